"""A request the HTTP parser refuses is answered in the API's JSON error shape, not uvicorn's text/plain.

uvicorn answers a request line it cannot parse (raw UTF-8 in the URL, as `curl ".../search?query=구진"` sends it;
RFC 9112 allows only ASCII there) before any route sees it, with `400 Invalid HTTP request received.` as plain text.
The path is unknown at that point, so every such refusal gets the API's `{"error": "bad_request", "detail"}` with a
detail that says how to send the request instead. Installed once by app.py, before the server starts.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)

DETAIL = ("The request is not valid HTTP: a URL may hold ASCII characters only. Percent-encode the rest, "
          "e.g. curl -G \"$API/analyses/search\" --data-urlencode \"query=...\".")
BODY = json.dumps({"error": "bad_request", "detail": DETAIL}).encode("ascii")
HEAD = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
        b"content-length: " + str(len(BODY)).encode("ascii") + b"\r\nconnection: close\r\n\r\n")


def _send_json_400(self, msg: str) -> None:
    # What uvicorn's own send_400_response does (write, close), with the API's body; its `msg` names the parser's
    # complaint, which is logged, not sent (it may quote the request).
    log.info("an unparseable HTTP request was refused: %s", msg)
    self.transport.write(HEAD + BODY)
    self.transport.close()


def install() -> list[str]:
    """Answer unparseable requests as JSON in every uvicorn HTTP protocol that is installed; the ones patched."""
    patched = []
    for module_name, class_name in (("uvicorn.protocols.http.h11_impl", "H11Protocol"),
                                    ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol")):
        try:
            module = __import__(module_name, fromlist=[class_name])
        except ImportError:  # httptools is optional: uvicorn then speaks h11 only
            continue
        protocol = getattr(module, class_name, None)
        if protocol is None or not callable(getattr(protocol, "send_400_response", None)):
            log.warning("uvicorn's %s has no send_400_response: unparseable requests get its text/plain 400",
                        class_name)
            continue
        protocol.send_400_response = _send_json_400
        patched.append(class_name)
    return patched


__all__ = ["DETAIL", "install"]
