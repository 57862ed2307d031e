#!/bin/sh
# The standard checks of a booted lab VM, run in the guest as the login user (through sudo -n where needed).
# Prints one line per check: name<TAB>pass|fail<TAB>milliseconds<TAB>message. Always exits 0: the lines are the
# result.
#
# environment: EXPECT_HOSTNAME (empty: any name but localhost), NIC_MACS (MACs of the declared NICs, in order),
#              NIC_NAMING ("kernel": NIC i must be eth<i>), SERVICES (units that must be active),
#              SETTLE_SECONDS (how long to wait for the boot to finish before listing failed units)
set -u

now() { date +%s%3N; }
report() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$(($(now) - $3))" "$4" | tr -d '\r'; }

# hostname
t=$(now)
name=$(hostname)
if [ -n "$EXPECT_HOSTNAME" ]; then
  if [ "$name" = "$EXPECT_HOSTNAME" ]; then report hostname pass "$t" "$name"
  else report hostname fail "$t" "the host name is '$name', expected '$EXPECT_HOSTNAME'"; fi
elif [ -n "$name" ] && [ "$name" != localhost ]; then report hostname pass "$t" "$name"
else report hostname fail "$t" "the host name is not set ('$name')"; fi

# NICs: each declared MAC present, in the declared order.
t=$(now)
i=0
found=""
problem=""
last_index=0
for mac in $NIC_MACS; do
  nic=""
  for dir in /sys/class/net/*; do
    [ "$(cat "$dir/address" 2>/dev/null)" = "$mac" ] && nic=${dir##*/}
  done
  if [ -z "$nic" ]; then
    problem="${problem}NIC $i ($mac) is missing; "
  else
    found="$found $nic"
    index=$(cat "/sys/class/net/$nic/ifindex")
    if [ "${NIC_NAMING:-}" = kernel ] && [ "$nic" != "eth$i" ]; then
      problem="${problem}NIC $i ($mac) is $nic, expected eth$i; "
    elif [ "$index" -le "$last_index" ]; then
      problem="${problem}NIC $i ($mac, $nic) comes before NIC $((i - 1)); "
    fi
    last_index=$index
  fi
  i=$((i + 1))
done
if [ -z "$problem" ]; then report nics pass "$t" "$i NICs in order:$found"
else report nics fail "$t" "${problem% }; the guest has: $(cd /sys/class/net && echo *)"; fi
primary=${found# }
primary=${primary%% *}

# The primary NIC: an address from DHCP (a lease: "dynamic") and, when the DHCP server offered a router, the default
# route through it. QEMU's restricted user network (the lab rule: no way out) offers none, so then no route is right.
t=$(now)
if [ -z "$primary" ]; then
  report network fail "$t" "the primary NIC is missing"
elif ! command -v ip >/dev/null; then
  report network fail "$t" "cannot check: the image has no 'ip' command (iproute2)"
else
  lease_file=/run/systemd/netif/leases/$(cat "/sys/class/net/$primary/ifindex")
  # SSH can answer before networkd has written the lease and added the route: give them until the deadline.
  deadline=$(($(date +%s) + SETTLE_SECONDS))
  while :; do
    address=$(ip -4 -o addr show dev "$primary" | awk '{print $4}' | head -n1)
    lease=$(ip -4 -o addr show dev "$primary" | grep -c dynamic)
    route=$(ip -4 route show default | head -n1)
    lease_text=$(sudo -n cat "$lease_file" 2>/dev/null || cat "$lease_file" 2>/dev/null)
    router=$(echo "$lease_text" | sed -n 's/^ROUTER=//p' | head -n1)
    if [ -n "$address" ] && [ "$lease" -gt 0 ]; then
      if [ -n "$lease_text" ] && [ -z "$router" ]; then break; fi
      if echo "$route" | grep -q "dev $primary"; then break; fi
    fi
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 1
  done
  if [ -z "$address" ]; then report network fail "$t" "$primary has no IPv4 address"
  elif [ "$lease" -eq 0 ]; then report network fail "$t" "$primary has $address, but not from DHCP (no lease)"
  elif [ -n "$lease_text" ] && [ -z "$router" ]; then
    report network pass "$t" "$primary has $address (DHCP); the DHCP server offered no router (restricted network)"
  elif ! echo "$route" | grep -q "dev $primary"; then
    report network fail "$t" "$primary has $address but the default route is '${route:-none}' (router offered: ${router:-unknown})"
  else report network pass "$t" "$primary has $address (DHCP), default route ${route% proto*}"; fi
fi

# Declared services. sshd does not wait for the network services (a router's daemons may still be starting when SSH
# answers): one still activating is given until the deadline.
t=$(now)
deadline=$(($(date +%s) + SETTLE_SECONDS))
while :; do
  inactive=""
  starting=0
  for unit in $SERVICES; do
    state=$(systemctl is-active "$unit" 2>/dev/null)
    [ "$state" = active ] || inactive="$inactive $unit ($state)"
    case $state in activating | reloading | "") starting=1 ;; esac
  done
  if [ -z "$inactive" ] || [ "$starting" = 0 ] || [ "$(date +%s)" -ge "$deadline" ]; then break; fi
  sleep 1
done
if [ -z "$SERVICES" ]; then report services pass "$t" "no services declared"
elif [ -z "$inactive" ]; then report services pass "$t" "active:$(echo " $SERVICES" | tr -s ' ')"
else report services fail "$t" "not active:$inactive"; fi

# No failed units, once the boot has finished (SSH answers before the last units have started).
t=$(now)
state=$(timeout "$SETTLE_SECONDS" systemctl is-system-running --wait 2>/dev/null)
failed=$(systemctl list-units --state=failed --plain --no-legend 2>/dev/null | awk '{print $1}' | tr '\n' ' ')
if [ -n "$failed" ]; then report failed-units fail "$t" "failed units: ${failed% } (system $state)"
elif [ "$state" = running ]; then report failed-units pass "$t" "none (system running)"
else report failed-units fail "$t" "no failed units, but the system is '${state:-still starting}' after ${SETTLE_SECONDS} s"; fi
