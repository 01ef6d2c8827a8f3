#!/usr/bin/env bash
# Issue 11's acceptance, on this machine: for each leak kind, `make
# leak-repro LEAK=<kind>` must name, as its top growth site, code in the
# leaking cache (auth-server/src/cache/) or the request path that holds the
# leaked buffer (clw_auth::routes, auth-server/src/input.rs); `make
# fix-verify` must show no site grown by more than the fixed cache's byte
# bound (profiles/fixed.json session.cache.max_bytes). Each run's folder is
# kept under reports/leak-sites/. Exits 1 when any check fails.
#
# Orchestration only: the rules are `clw-cli verify`'s (--top-site-in,
# --sites-within; run/src/verify.rs); jq only reads figures for the table.
set -u
make=${MAKE:-make}
jq=${JQ:-jq}
cli=${CLW_CLI:-target/release/clw-cli}
kinds=${KINDS:-unbounded expired-retained payload-duplication arc-cycle handle-accumulation}
out=reports/leak-sites
rm -rf "$out" && mkdir -p "$out"
failed=0

top_site='(.memory.growth_sites // [])[0] // empty | "\(.function)\t\(.file // "")\t\(.line // 0)\t\(.bytes_grown)\t\(.share_percent)"'

printf '%-22s %-9s %-8s %s\n' kind verdict "grown" "top growth site"
for kind in $kinds; do
  $make --no-print-directory leak-repro LEAK="$kind" >"$out/$kind.log" 2>&1
  cp -r reports/leak-repro "$out/$kind"
  summary="$out/$kind/summary.json"
  verdict=$($jq -r '.memory.verdict // "none"' "$summary" 2>/dev/null)
  IFS=$'\t' read -r fn file line bytes share < <($jq -r "$top_site" "$summary" 2>/dev/null)
  mib=$(awk -v b="${bytes:-0}" 'BEGIN { printf "%.1fM", b / 1048576 }')
  printf '%-22s %-9s %-8s %s (%s:%s) %.0f%%\n' "$kind" "$verdict" "$mib" "${fn:-none}" "${file:-?}" "${line:-?}" "${share:-0}"
  "$cli" verify "$out/$kind" --expect leak \
    --top-site-in auth-server/src/cache/ --top-site-in auth-server/src/input.rs \
    --top-site-in clw_auth::routes:: >"$out/$kind.verify" \
    || { grep '^FAIL\|NOT' "$out/$kind.verify" | sed 's/^/  /'; echo "  (see $out/$kind.log)"; failed=1; }
done

$make --no-print-directory fix-verify DURATION="${FIX_DURATION:-120}" >"$out/fixed.log" 2>&1
fix_status=$?
cp -r reports/fix-verify "$out/fixed"
bound=$($jq -r '.authentication.session.cache.max_bytes' profiles/fixed.json)
max_grown=$($jq -r '[(.memory.growth_sites // [])[].bytes_grown] | max // 0' "$out/fixed/summary.json")
sites=$($jq -r '(.memory.growth_sites // []) | length' "$out/fixed/summary.json")
printf '%-22s %-9s %-8s largest of %s sites; the cache may hold %s\n' fixed \
  "$($jq -r '.memory.verdict' "$out/fixed/summary.json")" \
  "$(awk -v b="$max_grown" 'BEGIN { printf "%.1fM", b / 1048576 }')" "$sites" "$bound"
if [ "$fix_status" -ne 0 ]; then
  echo "  FAIL: make fix-verify failed (see $out/fixed.log)"; failed=1
fi
"$cli" verify "$out/fixed" --expect bounded --sites-within "$bound" >"$out/fixed.verify" \
  || { grep '^FAIL\|NOT' "$out/fixed.verify" | sed 's/^/  /'; failed=1; }
exit $failed
