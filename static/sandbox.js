// Runs a friend's task script where it can reach nothing of Potluck's.
//
// The widget fetches the script with `fetch(url, {integrity})`, so the
// browser refuses bytes whose hash is not the one the room allowed before a
// line of them runs. The script then runs in a Web Worker made from a `blob:`
// URL inside an iframe sandboxed with `allow-scripts` only: no
// `allow-same-origin`, so the frame and its worker have an opaque origin
// (`null`) and cannot open the widget's IndexedDB or Cache Storage, read its
// cookies, or reach the Matrix host, whose messages go to the widget's window
// only. The frame talks to the widget through one MessageChannel port. A chunk
// that outlives its time limit is stopped by removing the frame, which ends
// its worker. See docs/security.md for what this does and does not guarantee.
"use strict";
(function () {
  // The frame's whole document: relay one run between the port and a worker.
  const FRAME = `<!doctype html><meta charset="utf-8"><script>
    onmessage = (ev) => {
      const port = ev.ports && ev.ports[0];
      if (!port || !ev.data || typeof ev.data.source !== "string") return;
      onmessage = null;
      const url = URL.createObjectURL(new Blob([ev.data.source], { type: "text/javascript" }));
      let worker;
      try {
        worker = new Worker(url);
      } catch (e) {
        port.postMessage({ type: "error", reason: "the script could not start: " + e.message });
        return;
      }
      worker.onmessage = (m) => port.postMessage(m.data);
      worker.onerror = (e) => {
        e.preventDefault();
        port.postMessage({ type: "error", reason: String(e.message || "the script threw an error") });
      };
      worker.postMessage(ev.data.run);
    };
  <\/script>`;

  /**
   * Runs one chunk. `request` is JSON: {url, integrity, args, chunk, maxSeconds};
   * `inputs` the task's input files (Uint8Arrays, already checked), in order.
   * `onEvent` gets JSON strings: {type: "progress", fraction} any number of
   * times, then one of {type: "done", output} or {type: "failed", reason}.
   * Returns a function that stops the run.
   */
  self.potluckRunScript = (requestJson, inputs, onEvent) => {
    const request = JSON.parse(requestJson);
    let finished = false;
    let frame = null;
    const controller = new AbortController();
    const stop = () => {
      finished = true;
      clearTimeout(timer);
      controller.abort();
      if (frame) frame.remove();
    };
    const finish = (event) => {
      if (finished) return;
      stop();
      onEvent(JSON.stringify(event));
    };
    const timer = setTimeout(
      () => finish({ type: "failed", reason: `stopped after ${request.maxSeconds} s, the task's time limit` }),
      request.maxSeconds * 1000,
    );
    (async () => {
      let source;
      try {
        const response = await fetch(request.url, {
          integrity: request.integrity,
          credentials: "omit",
          signal: controller.signal,
        });
        if (!response.ok) throw new Error(`the server answered ${response.status}`);
        source = await response.text();
      } catch (e) {
        return finish({
          type: "failed",
          reason: `${request.url} could not be loaded with the hash the room allowed (${e.message})`,
        });
      }
      if (finished) return;
      const channel = new MessageChannel();
      channel.port1.onmessage = (m) => {
        const data = m.data || {};
        if (data.type === "progress") {
          const fraction = Math.min(1, Math.max(0, Number(data.fraction) || 0));
          if (!finished) onEvent(JSON.stringify({ type: "progress", fraction }));
        } else if (data.type === "result") {
          let output;
          try {
            output = JSON.parse(JSON.stringify(data.output ?? null));
          } catch (e) {
            return finish({ type: "failed", reason: `the script's output is not JSON: ${e.message}` });
          }
          finish({ type: "done", output });
        } else if (data.type === "error") {
          finish({ type: "failed", reason: String(data.reason ?? "the script failed").slice(0, 400) });
        }
      };
      frame = document.createElement("iframe");
      frame.setAttribute("sandbox", "allow-scripts");
      frame.hidden = true;
      frame.srcdoc = FRAME;
      frame.onload = () => {
        const run = { type: "run", args: request.args, chunk: request.chunk, inputs };
        frame.contentWindow.postMessage({ source, run }, "*", [channel.port2]);
      };
      document.body.appendChild(frame);
    })();
    return stop;
  };
})();
