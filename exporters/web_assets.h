// Web assets compiled into the binary (exporters/CMakeLists.txt): Chart.js
// from Debian's libjs-chart.js (MIT; its notice travels in the .deb's docs as
// copyright.chart.js), the charting script both the status page and the run
// reports use (exporters/web/charts.js), and the report's own script and
// style. Compiled in so a box without internet draws charts, and a report
// opens anywhere from one file.
//
// Pure data; any thread.
#pragma once

#include <string_view>

namespace polar {

std::string_view ChartJsLibrary();  // chart.min.js, as Debian ships it
std::string_view ChartJsVersion();  // "3.9.1"
std::string_view ChartsScript();
std::string_view ReportScript();
std::string_view ReportCss();

}  // namespace polar
