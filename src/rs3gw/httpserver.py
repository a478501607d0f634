"""The HTTP protocol uvicorn runs for us, with one change to how idle connections end at shutdown.

uvicorn closes an idle keep-alive connection with ``transport.close()``; over TLS that waits for
the client's close_notify, which an idle pooled client (boto3, urllib3) never sends, so SIGTERM
took the whole 30 s grace period whenever a TLS client was connected. Idle connections carry no
request, so aborting them loses nothing; in-flight requests still finish as before.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GracefulHttpToolsProtocol(HttpToolsProtocol):
    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()
        else:
            self.cycle.keep_alive = False
