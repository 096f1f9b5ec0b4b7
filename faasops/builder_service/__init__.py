"""The Builder service: the Builder REST API on top of faasops' provider plugins.

CI runners without the WebAssembly toolchain or registry credentials hand their sources to it;
``faasops builder serve --config builder.yaml`` runs it (in-cluster with IRSA, see
``examples/builder``), and the ``remote`` builder and registry of
:mod:`faasops.plugins.remote_builder` are its clients.

- :mod:`~faasops.builder_service.config` — the service's YAML config;
- :mod:`~faasops.builder_service.wire` — the wire values shared with the client;
- :mod:`~faasops.builder_service.models` — request/response models (the OpenAPI at ``/docs``);
- :mod:`~faasops.builder_service.uploads` — upload size limits and validation;
- :mod:`~faasops.builder_service.tasks` — long work as tasks in the state backend;
- :mod:`~faasops.builder_service.service` — what each endpoint does, through the providers;
- :mod:`~faasops.builder_service.app` — :func:`create_app`, the HTTP layer;
- :mod:`~faasops.builder_service.runner` — :func:`serve`.

Only ``wire`` is imported by the client; the rest needs the ``builder`` extra (FastAPI, uvicorn).
"""
