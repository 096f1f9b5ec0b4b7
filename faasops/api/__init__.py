"""The Platform API (``faasops api serve``): the old platform's REST API on faasops' engine, with
git as the source of truth — every write is a commit in the project repository plus an apply of
exactly that change.

=======  ===================================================================  =====================
GET      ``/api/workspaces``                                                  :mod:`.app`
POST     ``/api/workspaces``                                                  :mod:`.app`
GET      ``/api/workspaces/{ws}`` · PATCH · DELETE                            :mod:`.app`
GET      ``/api/workspaces/{ws}/functions`` · POST (Base64 ``code``)          :mod:`.app`
GET      ``/api/workspaces/{ws}/functions/{fn}`` · PATCH · DELETE             :mod:`.app`
POST     ``/api/workspaces/{ws}/functions/{fn}/invoke``                       :mod:`.observe_routes`
GET      ``/api/workspaces/{ws}/logs`` · ``…/functions/{fn}/logs``            :mod:`.observe_routes`
GET      ``/api/functions/{ws.fn}/loki-logs`` · ``…/metrics``                 :mod:`.observe_routes`
POST     ``/api/v1/build`` · ``build-and-push`` · ``push`` · ``scaffold`` ·   :mod:`.builder_routes`
         ``deploy``
GET      ``/api/v1/tasks/{id}`` · ``/api/v1/workspaces/{ws}/tasks``           :mod:`.builder_routes`
GET      ``/api/status`` (admin)                                              :mod:`.app`
GET      ``/healthz``, ``/docs``, ``/openapi.json`` (no token)                :mod:`.app`
=======  ===================================================================  =====================

Modules, in the order a write flows through them: :mod:`.access` (tokens, scopes),
:mod:`.app` (routes), :mod:`.uploaded_code` (the ``code`` field, checked before anything is
written), :mod:`.writer` (the writer thread: lock, edit, validate, commit, apply, recovery),
:mod:`.changes` (what each write does to the work tree), :mod:`.manifest_edit` (round-trip
``faas.yaml`` edits), :mod:`.git_repo` (commits and pushes). :mod:`.context` is what every
route knows about the project.
"""
