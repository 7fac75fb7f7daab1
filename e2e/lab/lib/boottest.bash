# shellcheck shell=bash
# ./lab test: BootTests against the lab's machines, as a CI job would run them. Each file is
# applied (a BootTest of the same name from an earlier run is deleted first), its progress shown,
# a `returns` check by Hotkey or Serial is exercised as a person at the machine would (QEMU's
# sendkey, the magic string on ttyS1) once it runs, and at the end the JUnit XML of each test is
# saved under $STATE/reports and summed up. Exit 0 when every test passed, 1 otherwise.

# The lab's own examples: one BootTest per machine kind (examples/boottest/lab/).
LAB_TESTS_DIR=$ROOT/examples/boottest/lab

# bt_json NAME TEMPLATE: BootTest NAME through a kubectl jsonpath template; empty when absent.
bt_json() { kube get bt "$1" -o "jsonpath=$2" 2>/dev/null || true; }

# printable TEXT: the first line of TEXT without control characters, at most 160 characters;
# status messages come from the machines' images.
printable() { printf '%s' "$1" | head -n 1 | tr -d '\000-\037\177' | cut -c1-160; }

# xml_unescape TEXT: the five entities of an attribute value JunitReport writes.
xml_unescape() { sed -e 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&apos;/'"'"'/g; s/&amp;/\&/g' <<<"$1"; }

# test_plan FILE: "NAME IMAGE MACHINE..." of the BootTest in FILE, as the API would read it;
# dies when FILE holds anything else.
test_plan() {
  local kind plan
  kind=$(kube create --dry-run=client -f "$1" -o 'jsonpath={.kind}' 2>&1) ||
    die "$1: not a manifest kubectl reads: $(printable "$kind")"
  [ "$kind" = BootTest ] || die "$1: holds a $(printable "$kind"), not one BootTest"
  plan=$(kube create --dry-run=client -f "$1" \
    -o 'jsonpath={.metadata.name} {.spec.imageRef} {range .spec.machines.names[*]}{@} {end}')
  echo "$plan"
}

# runnable NAME IMAGE MACHINE...: true when the lab has the BootImage and every named machine;
# else says what is missing.
runnable() {
  local name=$1 image=$2 m
  shift 2
  if ! kube get bi "$image" >/dev/null 2>&1; then
    note "skipping BootTest $name: the lab has no BootImage $image${DEBIAN:+ (Debian image: $DEBIAN)}"
    return 1
  fi
  for m in "$@"; do
    if [[ ",${MACHINES:-}," != *",$m,"* ]]; then
      note "skipping BootTest $name: the lab has no machine $m (it has: ${MACHINES//,/ })"
      return 1
    fi
  done
}

# machines_snapshot NAME: one line per machine of BootTest NAME: its name, phase, each check's
# result (after "checks:", comma-separated, in the order of spec.checks: never an empty field,
# which read would skip) and message, tab-separated.
machines_snapshot() {
  bt_json "$1" '{range .status.machines[*]}{.name}{"\t"}{.phase}{"\tchecks:"}{range .checks[*]}{.result}{","}{end}{"\t"}{.message}{"\n"}{end}' |
    tr -d '\r'
}

# exercise_returns NAME SNAPSHOT: presses Ctrl+Alt+F12, or sends the magic string, on each machine
# of BootTest NAME whose returns check by that trigger is Running in SNAPSHOT
# (machines_snapshot); again after 60 s without effect.
declare -A PRESSED=()
exercise_returns() {
  local name=$1 triggers checks machine list results i trigger key
  # One entry per check, empty for a check of another kind: the indexes are the checks'.
  triggers=$(bt_json "$name" '{range .spec.checks[*]}{.returns.trigger}{","}{end}')
  [[ "$triggers" == *Hotkey* || "$triggers" == *Serial* ]] || return 0
  IFS=, read -r -a checks <<<"$triggers"
  while IFS=$'\t' read -r machine _ list _; do
    [ -n "$machine" ] || continue
    IFS=, read -r -a results <<<"${list#checks:}"
    for i in "${!checks[@]}"; do
      trigger=${checks[$i]}
      [ "${results[$i]:-}" = Running ] || continue
      [ "$trigger" = Hotkey ] || [ "$trigger" = Serial ] || continue
      key="$name/$machine/$i"
      if [ -n "${PRESSED[$key]:-}" ] && [ $((SECONDS - PRESSED[$key])) -lt 60 ]; then continue; fi
      PRESSED[$key]=$SECONDS
      if [ "$trigger" = Hotkey ]; then
        note "[$name] $machine: pressing Ctrl+Alt+F12 (./lab key $machine ctrl-alt-f12)"
        cmd_key "$machine" ctrl-alt-f12 >/dev/null
      else
        note "[$name] $machine: sending $MAGIC on ttyS1 (./lab serial $machine $MAGIC)"
        cmd_serial "$machine" "$MAGIC"
      fi
    done
  done <<<"$2"
}

# junit_summary NAME FILE: the JUnit report of BootTest NAME into FILE, and its counts and failed
# testcases on stdout; false when it cannot be had.
junit_summary() {
  local name=$1 file=$2 head
  curl -sf --max-time 30 -o "$file" \
    "${OPERATOR_ADMIN_URL:?}/tests/$LAB_NAMESPACE/$name/junit.xml" || {
    note "[$name] the operator did not serve the JUnit report (${OPERATOR_ADMIN_URL}/tests/$LAB_NAMESPACE/$name/junit.xml)"
    return 1
  }
  head=$(grep -m1 '<testsuites ' "$file") || { note "[$name] $file has no <testsuites>"; return 1; }
  attr() { sed -n "s/.* $1=\"\([^\"]*\)\".*/\1/p" <<<"$head"; }
  # The schema has skipped on each <testsuite>, not on <testsuites>: their sum.
  local skipped
  skipped=$({ grep -o '<testsuite [^>]*' "$file" || true; } | sed -n 's/.* skipped="\([0-9]*\)".*/\1/p' |
    awk '{ s += $1 } END { print s + 0 }')
  echo "JUnit $name: $(attr tests) tests, $(attr failures) failures, $(attr errors) errors," \
    "$skipped skipped ($(attr time) s): $file"
  # Each failed or erring testcase: its class (test.machine), name and message.
  awk '
    /<testcase / {
      match($0, /name="[^"]*"/); n = substr($0, RSTART + 6, RLENGTH - 7)
      match($0, /classname="[^"]*"/); c = substr($0, RSTART + 11, RLENGTH - 12)
    }
    /<(failure|error) / {
      kind = ($0 ~ /<failure /) ? "FAILED" : "ERROR"
      match($0, /message="[^"]*"/); m = substr($0, RSTART + 9, RLENGTH - 10)
      print "  " kind " " c " " n ": " substr(m, 1, 200)
    }' "$file" | while IFS= read -r line; do xml_unescape "$(printable "$line")"; done
}

cmd_test() {
  load_env
  local files=() timeout=1800 f
  while [ $# -gt 0 ]; do
    case "$1" in
      --timeout)
        [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--timeout takes seconds"
        timeout=$2; shift 2 ;;
      -*) die "unknown option $1; usage: ./lab test [--timeout SECONDS] [FILE ...]" ;;
      *) [ -f "$1" ] || die "no file $1"; files+=("$1"); shift ;;
    esac
  done
  local explicit=${#files[@]}
  if [ "$explicit" = 0 ]; then
    for f in "$LAB_TESTS_DIR"/*.yaml; do files+=("$f"); done
  fi
  local names=() plan name image machines
  for f in "${files[@]}"; do
    plan=$(test_plan "$f")
    read -r name image machines <<<"$plan"
    # shellcheck disable=SC2086 # machines is a list of names
    if ! runnable "$name" "$image" $machines; then
      [ "$explicit" = 0 ] || die "cannot run $f in this lab"
      continue
    fi
    if kube get bt "$name" >/dev/null 2>&1; then
      note "deleting BootTest $name of an earlier run (which releases its machines)"
      kube delete bt "$name" --wait=true --timeout=120s >/dev/null
    fi
    kube apply -f "$f" >/dev/null
    note "BootTest $name: $image on ${machines:-the machines it selects} ($f)"
    names+=("$name")
  done
  [ ${#names[@]} -gt 0 ] || die "no BootTest this lab can run (./lab up without --no-debian, and with two machines, runs both)"
  # Interrupted: the tests are deleted, which releases their machines.
  trap 'note "interrupted: deleting BootTest(s) ${names[*]}, which releases their machines"
    kube delete bt "${names[@]}" --wait=false >/dev/null 2>&1; exit 130' INT TERM

  local t0=$SECONDS deadline=$((SECONDS + timeout)) done_count phase line snapshot
  local machine mphase message
  declare -A shown=()
  while :; do
    done_count=0
    check_services || die "$(describe "$DEAD_SERVICE") died during the test"
    for name in "${names[@]}"; do
      phase=$(bt_json "$name" '{.status.phase}')
      snapshot=$(machines_snapshot "$name")
      while IFS=$'\t' read -r machine mphase _ message; do
        [ -n "$machine" ] || continue
        line="$mphase${message:+  $(printable "$message")}"
        if [ "${shown[$name/$machine]:-}" != "$line" ]; then
          shown[$name/$machine]=$line
          printf '%6ds  [%s] %s  %s\n' $((SECONDS - t0)) "$name" "$machine" "$line" >&2
        fi
      done <<<"$snapshot"
      case "$phase" in
        Passed | Failed) done_count=$((done_count + 1)) ;;
        *) exercise_returns "$name" "$snapshot" ;;
      esac
    done
    [ "$done_count" -lt ${#names[@]} ] || break
    if [ $SECONDS -ge $deadline ]; then
      note "the BootTests did not end in $timeout s; they keep running (./lab kubectl get bt)"
      break
    fi
    sleep 2
  done
  trap - INT TERM

  mkdir -p "$STATE/reports"
  local failed=0
  echo
  for name in "${names[@]}"; do
    phase=$(bt_json "$name" '{.status.phase}')
    echo "BootTest $name: ${phase:-no status} ($(bt_json "$name" '{.status.passed}') passed," \
      "$(bt_json "$name" '{.status.failed}') failed)"
    junit_summary "$name" "$STATE/reports/$name.xml" || failed=1
    [ "$phase" = Passed ] || failed=1
  done
  if [ $failed = 0 ]; then
    note "every BootTest passed (${#names[@]}) in $((SECONDS - t0)) s"
  else
    note "a BootTest did not pass: ./lab kubectl describe bt NAME, and the reports above"
  fi
  return $failed
}
