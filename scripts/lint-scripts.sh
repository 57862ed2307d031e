#!/usr/bin/env bash
# Lints every shell and Perl script in the repository: the files git tracks whose first line names bash, sh or perl
# (lib/scripts/, images/*/, scripts/, bench/, .ci/), so a new script is checked without being listed here.
# - shell: shellcheck, every finding counts (`# shellcheck disable=SCnnnn # why` where a finding is wrong);
# - Perl: `perl -c` (it compiles, under its own `use strict; use warnings`) and perlcritic at severity 5 ("gentle":
#   the policies that point at bugs, not at style).
#
# usage: scripts/lint-scripts.sh      exits 1 on any finding
set -euo pipefail
cd "$(dirname "$0")/.."

shell=()
perl=()
while IFS= read -r -d '' file; do
  [ -f "$file" ] || continue
  case $(head -n1 "$file") in
    '#!'*perl*) perl+=("$file") ;;
    '#!'*bash* | '#!'*/sh) shell+=("$file") ;;
  esac
done < <(git ls-files -z -- ':!*.md' ':!*.ts' ':!*.json' ':!*.yaml' ':!*.yml')

status=0
if ((${#shell[@]} == 0 || ${#perl[@]} == 0)); then
  echo "lint-scripts: found ${#shell[@]} shell and ${#perl[@]} Perl scripts; expected some of each" >&2
  exit 1
fi
shellcheck --format=gcc "${shell[@]}" || status=1
for file in "${perl[@]}"; do
  perl -c "$file" 2>&1 | grep -v ' syntax OK$' && status=1
  perlcritic --profile scripts/perlcritic.rc --gentle --quiet --verbose $'%f:%l:%c: %m [%p]\n' "$file" || status=1
done
echo "lint-scripts: ${#shell[@]} shell and ${#perl[@]} Perl scripts checked" >&2
exit "$status"
