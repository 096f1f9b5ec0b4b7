from spin_sdk import http


def handle_request(request):
    return http.Response(200, {}, b'hello')
