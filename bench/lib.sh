# Shared by the benchmarks (sourced, not run): bench/score.sh, bench/serve.sh, bench/proxy.sh.

# find_genmodel_jar: prints the path of h2o-genmodel.jar (h2o 3.46.0.11): GENMODEL_JAR, else
# /tmp/h2o-genmodel.jar, else extracted from a pip-installed h2o (`pip install
# h2o==3.46.0.11`) into /tmp; says how to get it and fails when none is found.
find_genmodel_jar() {
  if [ -n "${GENMODEL_JAR:-}" ]; then
    [ -f "$GENMODEL_JAR" ] && { echo "$GENMODEL_JAR"; return; }
    echo "GENMODEL_JAR=$GENMODEL_JAR does not exist" >&2
    return 1
  fi
  if [ -f /tmp/h2o-genmodel.jar ]; then echo /tmp/h2o-genmodel.jar; return; fi
  local pkg
  pkg=$(python3 -c 'import os, h2o; print(os.path.dirname(h2o.__file__))' 2>/dev/null || true)
  if [ -n "$pkg" ] && [ -f "$pkg/backend/bin/h2o.jar" ]; then
    echo "extracting h2o-genmodel.jar from $pkg/backend/bin/h2o.jar" >&2
    unzip -j -o -q "$pkg/backend/bin/h2o.jar" www/3/h2o-genmodel.jar -d /tmp
    echo /tmp/h2o-genmodel.jar
    return
  fi
  cat >&2 <<'EOF'
this benchmark needs h2o-genmodel.jar (h2o 3.46.0.11). Get it with:
    pip install h2o==3.46.0.11
    unzip -j -o <site-packages>/h2o/backend/bin/h2o.jar www/3/h2o-genmodel.jar -d /tmp
(<site-packages>: python3 -c 'import h2o, os; print(os.path.dirname(os.path.dirname(h2o.__file__)))')
or point GENMODEL_JAR at a copy.
EOF
  return 1
}

# wait_addr LOG PID: prints the address a server printed as "listening on ADDR".
wait_addr() {
  local addr=
  for _ in $(seq 600); do
    addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$1" | head -1)
    [ -n "$addr" ] && { echo "$addr"; return; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "a server did not start; its log:" >&2; cat "$1" >&2; return 1
}

# musl_build_ready: whether the images' static build can be made here: the rustup target
# x86_64-unknown-linux-musl and musl-gcc (mimalloc's and copy-routines' C) are installed.
musl_build_ready() {
  rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    && command -v musl-gcc >/dev/null
}

# hwm_kb PID: the peak RSS (VmHWM) of a process, in KiB.
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# load1: the 1-minute load average now.
load1() { cut -d' ' -f1 /proc/loadavg; }
# median: the median of the numbers on standard input (blank- or line-separated).
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
