#!/bin/sh
# Refresh mailer/data/caniemail.json from the caniemail npm package (MIT, data from
# caniemail.com), slimmed to what `mailer check` reads. Usage:
#   sh scripts/refresh-caniemail.sh [VERSION]      # default: the version pinned below
# Then update the version in mailer/data/CANIEMAIL.md, run the tests and review the diff.
set -eu
VERSION="${1:-2.0.2}"
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PYTHON="$ROOT/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "caniemail@$VERSION" >/dev/null
tar xzf "caniemail-$VERSION.tgz"
"$PYTHON" - "$VERSION" package/data/caniemail.json "$ROOT/mailer/data/caniemail.json" <<'EOF'
import json
import sys

version, source, target = sys.argv[1:4]
with open(source, encoding="utf-8") as f:
    raw = json.load(f)
# Only the families whose clients mailer reports on (see mailer/checks/clients.py); every
# platform of each is kept so that adding one (say outlook.macos) needs no refresh.
families = ("outlook", "gmail", "apple-mail", "samsung-email")
keep = ("slug", "title", "category", "url", "stats", "notes_by_num")
slim = {
    "source": f"caniemail@{version} (npm), data from https://www.caniemail.com",
    "license": "MIT; see CANIEMAIL.md",
    "api_version": raw["api_version"],
    "last_update_date": raw["last_update_date"],
    "data": [
        {
            **{key: feature.get(key) for key in keep if key != "stats"},
            "stats": {f: feature["stats"][f] for f in families if f in feature["stats"]},
        }
        for feature in raw["data"]
    ],
}
# One feature a line: a refresh reads as a reviewable diff.
compact = {"ensure_ascii": False, "separators": (",", ":")}
head = json.dumps({k: v for k, v in slim.items() if k != "data"}, **compact)[:-1]
lines = [json.dumps(feature, **compact) for feature in slim["data"]]
with open(target, "w", encoding="utf-8") as f:
    f.write(head + ',"data":[\n' + ",\n".join(lines) + "\n]}\n")
print(f"wrote {target}: {len(slim['data'])} features, data of {raw['last_update_date']}")
EOF
