#!/usr/bin/env python3
"""A second mutating admission webhook for e2e/run's reinvocation scenario.

It plays a sidecar injector that runs after ciguard: on a pod CREATE it appends a
container `e2e-sidecar` with no security context (once: a pod that has it is left
alone). The API server must then call ciguard again (reinvocationPolicy: IfNeeded),
which gives the sidecar the policy's context and must not add a second workdir
init container.

Usage: testhook.py PORT CERT KEY   (HTTPS on 127.0.0.1:PORT, POST /mutate)
Only the Python standard library.
"""

import base64
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIDECAR = {
    "name": "e2e-sidecar",
    "image": "busybox:stable-musl",
    "command": ["sleep", "3600"],
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.answer(200, b"ok\n", "text/plain")

    def do_POST(self):
        if self.path.split("?")[0] != "/mutate":
            self.answer(404, b"not found\n", "text/plain")
            return
        length = int(self.headers.get("Content-Length", "0"))
        review = json.loads(self.rfile.read(length))
        request = review["request"]
        response = {"uid": request["uid"], "allowed": True}
        pod = request.get("object") or {}
        names = [c.get("name") for c in pod.get("spec", {}).get("containers", [])]
        if request.get("operation") == "CREATE" and SIDECAR["name"] not in names:
            patch = [{"op": "add", "path": "/spec/containers/-", "value": SIDECAR}]
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": response,
            }
        ).encode()
        self.answer(200, body, "application/json")

    def answer(self, code, body, content_type):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("testhook: " + (fmt % args) + "\n")


def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
