"""A real headless Chromium for the tests, driven over the DevTools protocol on a pipe.

Chromium (Debian's `chromium` package; $CHROMIUM names another binary) is started with
--remote-debugging-pipe: the protocol's JSON messages, each ended by a NUL byte, go in on
its file descriptor 3 and come out on 4, so no port, no websocket and no extra package.
find_chromium() is None where it is not installed (the tests skip, saying so).

    python tests/browser.py PAGE.html SHOT.png [WIDTH]   # a full-page screenshot (docs/)
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

TIMEOUT = 60.0


def find_chromium() -> Optional[str]:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class Browser:
    """One headless Chromium with one page (a target attached in flat mode). call() sends a
    command and waits for its answer; every event seen on the way is kept in events."""

    def __init__(self, exe: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="collapse-chromium-")
        to_child, self._write = os.pipe()  # we write, Chromium reads on its fd 3
        self._read, from_child = os.pipe()  # Chromium writes on its fd 4, we read

        def fds() -> None:  # in the child, before exec: the protocol's two descriptors
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={self._profile}", "about:blank"]
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=fds, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self.events: List[Dict[str, Any]] = []
        self._inbox: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._reader, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def _reader(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                self._inbox.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                message, buf = buf.split(b"\0", 1)
                self._inbox.put(json.loads(message))

    def _receive(self, deadline: float) -> Dict[str, Any]:
        try:
            message = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("Chromium did not answer in time") from None
        if message is None:
            raise RuntimeError("Chromium closed its DevTools pipe")
        return message

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, session: bool = True) -> Dict[str, Any]:
        self._next_id += 1
        message: Dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str) -> Dict[str, Any]:
        """The next (or an already seen, not yet taken) event of this name."""
        for i, seen in enumerate(self.events):
            if seen["method"] == event and not seen.get("_taken"):
                seen["_taken"] = True
                return seen
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if "method" in message:
                self.events.append(message)
                if message["method"] == event:
                    message["_taken"] = True
                    return message

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, clip: Optional[Dict[str, float]] = None) -> bytes:
        params: Dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", params)["data"])

    def errors(self) -> List[str]:
        """Console errors, uncaught exceptions and error-level log entries (CSP refusals among them)."""
        out = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif ev["method"] == "Runtime.exceptionThrown":
                out.append(str(p.get("exceptionDetails", {}).get("text")))
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(str(p["entry"].get("text")))
        return out

    def requests(self) -> List[str]:
        return [ev["params"]["request"]["url"] for ev in self.events if ev["method"] == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._write)
        os.close(self._read)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def full_page_png(page: str, width: int = 1000) -> bytes:
    """A screenshot of the whole page at this CSS width."""
    exe = find_chromium()
    if exe is None:
        raise SystemExit("no chromium found (apt-get install chromium, or set $CHROMIUM)")
    with Browser(exe) as b:
        b.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": 800, "deviceScaleFactor": 1,
                                                      "mobile": False})
        b.open("file://" + os.path.abspath(page))
        return b.screenshot()


if __name__ == "__main__":
    html_path, png_path = sys.argv[1], sys.argv[2]
    png = full_page_png(html_path, int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
    with open(png_path, "wb") as f:
        f.write(png)
