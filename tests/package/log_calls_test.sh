#!/usr/bin/env bash
# Every log call in the daemon's code passes its caller's location: SPDLOG_INFO(...) and friends,
# never spdlog::info(...), which sends no file, line or function, so the journal entry would carry
# no CODE_FILE/CODE_LINE/CODE_FUNC (daemon/service/logging.h).
#   log_calls_test.sh SOURCE_DIR
set -euo pipefail
cd "$1"
# Comments may name the function; code may not.
if grep -rnE --include='*.cc' --include='*.h' 'spdlog::(trace|debug|info|warn|error|critical)\(' \
  daemon scenarios exporters | grep -vE '^[^:]+:[0-9]+:\s*//'; then
  echo "FAIL: log with SPDLOG_INFO/SPDLOG_WARN/SPDLOG_ERROR (caller's location), not spdlog::info()" >&2
  exit 1
fi
echo "log calls OK: $(grep -rhoE 'SPDLOG_(TRACE|DEBUG|INFO|WARN|ERROR|CRITICAL)\(' daemon scenarios exporters | wc -l) calls pass their location"
