// polar-loadd run report: draws the whole run's charts from the JSON inlined
// in the page (#report-data), with the inlined Chart.js. Sends nothing
// anywhere: the page's Content-Security-Policy allows no connection at all.
'use strict';

(() => {
  const root = document.getElementById('charts');
  if (typeof Chart === 'undefined' || typeof PolarCharts === 'undefined') {
    root.textContent = 'The charts could not be drawn: Chart.js did not load.';
    return;
  }
  const data = JSON.parse(document.getElementById('report-data').textContent);
  if (!data.scenarios.length) {
    root.textContent = 'No scenario ran: nothing to chart.';
    return;
  }
  new PolarCharts.Board(root, 'whole').update(data);
  document.documentElement.dataset.charts = 'drawn';
})();
