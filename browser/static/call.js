// Click-to-seek: a transcript line plays the recording from that line's start time,
// and the line being spoken is highlighted while the audio plays.
(function () {
  const audio = document.getElementById("recording");
  const lines = Array.from(document.querySelectorAll("ol.transcript li[data-start]"));
  if (!lines.length) return;
  lines.forEach((li) => {
    li.addEventListener("click", () => {
      if (!audio) return;
      audio.currentTime = parseFloat(li.dataset.start);
      audio.play().catch(() => {});
    });
  });
  if (!audio) return;
  audio.addEventListener("timeupdate", () => {
    const t = audio.currentTime;
    lines.forEach((li) => {
      const on = t >= parseFloat(li.dataset.start) && t < parseFloat(li.dataset.end);
      li.classList.toggle("playing", on);
    });
  });
})();
