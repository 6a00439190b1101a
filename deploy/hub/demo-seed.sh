#!/bin/sh
# Create the demo's adapter credentials once and write them where the simulator reads them
# (compose profile "demo"). The jurisdictions are those of hub/cli.py's DEMO_JURISDICTIONS:
# Qingpu, Wujiang, Jiashan, Jinshan, Pinghu, Kunshan. A second run finds the file and stops.
set -eu

out=/var/lib/liandong-demo/adapters.json
if [ -s "$out" ]; then
  echo "demo adapters already created: $out"
  exit 0
fi

tmp="$out.tmp"
printf '{' >"$tmp"
sep=''
for code in 310118 320509 330421 310116 330482 320583; do
  # `liandong adapters add` prints the token as its last line, once.
  token=$(liandong adapters add --jurisdiction "$code" --name "demo-$code" | tail -n 1)
  printf '%s\n  "demo-%s": {"jurisdiction": "%s", "token": "%s"}' \
    "$sep" "$code" "$code" "$token" >>"$tmp"
  sep=','
done
printf '\n}\n' >>"$tmp"
chmod 600 "$tmp"
mv "$tmp" "$out"
echo "demo adapters created: $out"
