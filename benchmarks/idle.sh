# Sourced by the benchmark scripts: wait until the machine is idle before a measurement. On a 2-core machine
# another busy process costs a 2-thread OpenMP team 2-10x, so timings taken during a build are meaningless.
# Knobs: IDLE_MAX_BUSY [10] percent CPU over one second counts as idle; IDLE_TIMEOUT [600] seconds at most.
IDLE_MAX_BUSY=${IDLE_MAX_BUSY:-10}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-600}

busy_percent() {  # CPU use of the whole machine over one second
  local _ u n s i w x y z t1 i1 t2 i2
  read -r _ u n s i w x y z _ < /proc/stat; t1=$((u + n + s + i + w + x + y + z)); i1=$((i + w))
  sleep 1
  read -r _ u n s i w x y z _ < /proc/stat; t2=$((u + n + s + i + w + x + y + z)); i2=$((i + w))
  echo $((100 - 100 * (i2 - i1) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}

wait_idle() {
  local start=$SECONDS b
  while :; do
    b=$(busy_percent)
    if ((b <= IDLE_MAX_BUSY)); then return 0; fi
    if ((SECONDS - start >= IDLE_TIMEOUT)); then
      echo "warning: machine still ${b}% busy after ${IDLE_TIMEOUT}s; measuring anyway" >&2
      return 0
    fi
  done
}
