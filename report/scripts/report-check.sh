#!/usr/bin/env bash
# Browser check of the HTML reports (make report-check): renders the
# synthetic run folders of clw_report::fixtures, screenshots each page with
# headless Debian chromium (installed with apt-get when missing), and fails
# on a blank page or a missing verdict banner. Loads only file:// pages.
set -euo pipefail

CARGO=${CARGO:-cargo}
OUT=${REPORT_CHECK_DIR:-target/report-check}

chromium=${CHROMIUM:-}
if [ -z "$chromium" ]; then
    for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
        if [ -x "$candidate" ]; then chromium=$candidate; break; fi
    done
fi
if [ -z "$chromium" ]; then
    echo "report-check: chromium missing: installing Debian's chromium package"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    chromium=/usr/bin/chromium
fi

rm -rf "$OUT"
mkdir -p "$OUT"
$CARGO run -q -p clw-report --example fixture_report -- "$OUT/runs"
$CARGO build -q -p clw-report --example screenshot_check

failed=0
# page:expected banner ("-" = a page without a verdict banner)
for entry in leak-repro:leak fix-verify:bounded partial:inconclusive no-server:inconclusive compare:leak index:-; do
    name=${entry%%:*}
    banner=${entry##*:}
    if [ "$name" = index ]; then page="$OUT/runs/index.html"; else page="$OUT/runs/$name/index.html"; fi
    shot="$OUT/$name.png"
    profile=$(mktemp -d)
    if ! timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
        --user-data-dir="$profile" --screenshot="$shot" --window-size=1280,2400 \
        "file://$(realpath "$page")" >"$OUT/$name.chromium.log" 2>&1; then
        echo "report-check FAILED: chromium could not render $page:"
        tail -5 "$OUT/$name.chromium.log"
        failed=1
    fi
    rm -rf "$profile"
    args=("$shot")
    if [ "$banner" != "-" ]; then args+=(--banner "$banner"); fi
    $CARGO run -q -p clw-report --example screenshot_check -- "${args[@]}" || failed=1
done
if [ "$failed" != 0 ]; then
    echo "report-check: FAILED (screenshots in $OUT)"
    exit 1
fi
echo "report-check: all pages rendered (screenshots in $OUT)"
