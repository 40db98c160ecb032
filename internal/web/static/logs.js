// Logs: what one execution printed, with a search within it (matching
// lines only, matches marked) and a download as a text file. Lines are
// numbered and, where the shim said when each began (logTimes: ms since
// the call began), timed; the view is headed by the execution's start.
"use strict";
const Logs = (() => {
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };

  // view returns the logs of execution ex in an element whose <pre> has
  // the id "exec-logs" (prefix: several on one page get their own ids).
  function view(ex, prefix = "exec") {
    const text = ex.logs || "";
    const lines = text.replace(/\n$/, "").split("\n");
    const start = ex.startedAt ? new Date(ex.startedAt).getTime() : NaN;
    const times = Array.isArray(ex.logTimes) && !isNaN(start) ? ex.logTimes : [];
    const two = (n, w = 2) => String(n).padStart(w, "0");
    const clock = ms => { const d = new Date(start + ms); return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${two(d.getMilliseconds(), 3)}`; };
    const pre = el("pre", "logs");
    pre.id = prefix + "-logs";
    const search = el("input");
    search.type = "search"; search.id = prefix + "-log-search"; search.placeholder = "Search the logs";
    search.setAttribute("aria-label", "Search the logs");
    search.setAttribute("aria-controls", pre.id);
    const count = el("span", "muted small");
    count.id = prefix + "-log-count"; count.setAttribute("role", "status");
    const download = el("button", "small", "Download");
    download.type = "button"; download.id = prefix + "-log-download";
    download.setAttribute("aria-label", "Download the logs as a text file");
    download.disabled = !text;
    download.onclick = () => {
      // With times, each line is written as the view shows it: "time  text".
      const out = times.length ? lines.map((l, i) => (i < times.length ? new Date(start + times[i]).toISOString() : "") + "\t" + l).join("\n") + "\n" : text;
      const url = URL.createObjectURL(new Blob([out], { type: "text/plain;charset=utf-8" }));
      const a = el("a"); a.href = url; a.download = `${ex.executionId || "execution"}.log`;
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    };
    const render = () => {
      const q = search.value.toLowerCase();
      pre.replaceChildren();
      if (!text) { pre.textContent = "(no output)"; count.textContent = ""; return; }
      let shown = 0;
      lines.forEach((line, i) => {
        const at = q ? line.toLowerCase().indexOf(q) : 0;
        if (q && at < 0) return;
        shown++;
        const row = el("span", "log-line");
        row.append(el("span", "ln", String(i + 1).padStart(String(lines.length).length, " ") + "  "));
        if (times.length) {
          const ts = el("span", "ts", i < times.length ? clock(times[i]) + "  " : " ".repeat(14));
          if (i < times.length) ts.title = `+${times[i]} ms`;
          row.append(ts);
        }
        if (q) {
          let from = 0, lower = line.toLowerCase();
          for (let k = lower.indexOf(q); k >= 0; k = lower.indexOf(q, from)) {
            row.append(line.slice(from, k), el("mark", "", line.slice(k, k + q.length)));
            from = k + q.length;
          }
          row.append(line.slice(from));
        } else row.append(line);
        pre.append(row, "\n");
      });
      count.textContent = q ? `${shown} of ${lines.length} lines match` : `${lines.length} line${lines.length === 1 ? "" : "s"}`;
    };
    search.oninput = render;
    render();
    const head = el("p", "muted small", ex.startedAt ? `Started ${new Date(ex.startedAt).toLocaleString()}` + (ex.logsTruncated ? " · truncated at the output limit" : "") : "");
    const tools = el("div", "row log-tools");
    tools.append(search, count, download);
    const wrap = el("div", "log-view");
    wrap.append(tools, head, pre);
    return wrap;
  }

  return { view };
})();
