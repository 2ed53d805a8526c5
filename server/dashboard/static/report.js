// After-action report download (docs/reports.md), for a signed-in operator: the token goes in
// the Authorization header, never in a URL, so the document is fetched and handed to the
// browser as a file. The period is given in the stations' zone (Japan time), whatever the
// browser's own.
"use strict";

(() => {
  const form = document.getElementById("report");
  const start = document.getElementById("report-start");
  const end = document.getElementById("report-end");
  const hour = Math.floor(Date.now() / 3600000) * 3600000;  // Japan time's hours are UTC's
  stationTime.ready.then(() => {
    end.value = stationTime.inputValue(new Date(hour + 3600000));
    start.value = stationTime.inputValue(new Date(hour - 23 * 3600000));  // the last day by default
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams({
      start: stationTime.fromInput(start.value).toISOString(),
      end: stationTime.fromInput(end.value).toISOString(),
      format: document.getElementById("report-format").value,
    });
    const municipality = document.getElementById("report-municipality").value.trim();
    if (municipality) params.set("municipality", municipality);
    const note = document.getElementById("crew-note");
    const reply = await fetch(`/api/v1/reports?${params}`, { headers: { Authorization: `Bearer ${operator.token()}` } });
    if (!reply.ok) {
      const body = await reply.json().catch(() => ({}));
      note.textContent = `report: ${reply.status} ${body.error ? body.error.message : ""}`;
      return;
    }
    const name = /filename="([^"]+)"/.exec(reply.headers.get("Content-Disposition") || "");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await reply.blob());
    link.download = name ? name[1] : "chargenet-report";
    link.dataset.report = link.download;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    note.textContent = `報告書 / report: ${link.download}`;
  });
})();
