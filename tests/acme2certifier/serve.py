"""Run acme2certifier (PyPI) under the standard library's threaded wsgiref server.

Usage: python serve.py CONFIG PORT REQUEST_LOG

acme2certifier's own start-up binds 0.0.0.0:80; this binds 127.0.0.1:PORT only. Its
configuration is read once at start (ACME_SRV_CONFIGFILE). Every request's method and
path is appended to REQUEST_LOG (one line each), so tests can count what a client asked.
"""

import os
import runpy
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIServer, make_server

config, port, request_log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.environ["ACME_SRV_CONFIGFILE"] = config

import acme2certifier  # noqa: E402

wsgi_file = os.path.join(
    os.path.dirname(acme2certifier.__file__), "share", "acme2certifier_wsgi.py"
)
module = runpy.run_path(wsgi_file, run_name="acme2certifier_wsgi")
app = module["application"]
handler = module["get_handler_cls"]()
lock = threading.Lock()


def logged(environ, start_response):
    with lock, open(request_log, "a", encoding="utf-8") as log:
        log.write(f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}\n")
    return app(environ, start_response)


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


server = make_server("127.0.0.1", port, logged, server_class=Server, handler_class=handler)
print(f"acme2certifier listening on http://127.0.0.1:{port}", flush=True)
server.serve_forever()
