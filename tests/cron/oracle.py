#!/usr/bin/env python3
"""An independent oracle for Stellar's cron engine (src/cron.c, src/tz.c).

Generates random cron expressions together with the sets of values they
mean (so this file needs no cron parser of its own), random start times
(many of them next to the DST changes of America/New_York, Europe/Berlin and
Australia/Lord_Howe, the last a 30-minute shift), and computes the next fire
times by brute force with the standard library's zoneinfo: it walks the
candidate *local* times that match, maps each to the instants that show
that local time (none in a spring-forward gap, two in a fall-back), and
applies the DST rules of docs/schedules.md:

  - a fixed-time job fires at the first instant showing a matching local
    time, or, for a local time that does not exist, at the first instant
    after the gap (found here by bisection on real instants);
  - an interval job (seconds, minute or hour field written starting with
    '*') fires at every instant whose local time matches.

The engine answers through tests/cron/driver (one request per line); a few
cases also go through `stellar cron next` to check its output format. Exit
0: all agree; 1: a difference (printed with the expression, zone and start
to reproduce it); 77: python3's zoneinfo or the tz database is missing.

Usage: oracle.py DRIVER STELLAR [--cases N] [--seed S]
"""

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:
    print("skip: python3 has no zoneinfo (3.9 or later needed)")
    sys.exit(77)

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1)
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAYS = "SUN MON TUE WED THU FRI SAT".split()
DST_ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]
OTHER_ZONES = ["UTC", "Asia/Kolkata", "Pacific/Chatham", "America/St_Johns",
               "America/Sao_Paulo", "Europe/Dublin", "Antarctica/Troll",
               "Pacific/Apia", "Asia/Tehran", "America/Santiago"]

# name, lowest, highest, top of '*', names, value of names[0]
FIELDS = [("sec", 0, 59, 59, None, 0), ("min", 0, 59, 59, None, 0),
          ("hour", 0, 23, 23, None, 0), ("dom", 1, 31, 31, None, 0),
          ("mon", 1, 12, 12, MONTHS, 1), ("dow", 0, 7, 6, DAYS, 0)]


# ------------------------------------------------------------ Generation --

def render(rng, f, v, allow7=False):
    """A value as the expression may write it: a number or a name (and
    Sunday as 7 where allow7: a single value or the end of a range)."""
    name, _, _, _, names, base = f
    if allow7 and name == "dow" and v == 0 and rng.random() < 0.3:
        return "7"
    if names and rng.random() < 0.4:
        s = names[(v % 7 if name == "dow" else v) - base]
        return rng.choice([s, s.lower(), s.capitalize()])
    return str(v)


def pick(rng, f, hot):
    """A value, often one of the interesting ones (hot)."""
    _, lo, hi, top, _, _ = f
    if hot and rng.random() < 0.6:
        return rng.choice(hot)
    return rng.randint(lo, top)


def gen_item(rng, f, hot):
    """One list item: (text, set of values)."""
    name, lo, hi, top, _, _ = f
    kind = rng.choice(["*/", "v", "v", "v-v", "v-v/", "v/"])
    if kind == "*/":
        n = rng.randint(1, top - lo + 1)
        return "*/%d" % n, set(range(lo, top + 1, n))
    a = pick(rng, f, hot)
    if name == "dow" and a == 7:
        a = 0
    if kind == "v":
        return render(rng, f, a, True), {a}
    if kind == "v/":
        n = rng.randint(1, top - lo + 1)
        return "%s/%d" % (render(rng, f, a), n), set(range(a, top + 1, n))
    b = rng.randint(a, top)
    if name == "dow" and rng.random() < 0.2:
        b = 7  # "5-7": Friday to Sunday
    text = "%s-%s" % (render(rng, f, a), render(rng, f, b) if b != 7 else "7")
    vals = set(range(a, b + 1))
    if kind == "v-v/":
        n = rng.randint(1, min(top - lo + 1, b - a + 1))
        text += "/%d" % n
        vals = set(range(a, b + 1, n))
    if name == "dow":
        vals = {0 if v == 7 else v for v in vals}
    return text, vals


def gen_field(rng, f, hot, star_p):
    """A field: (text, set, starts with '*')."""
    _, lo, _, top, _, _ = f
    r = rng.random()
    if r < star_p:
        return "*", set(range(lo, top + 1)), True
    items = [gen_item(rng, f, hot) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    text = ",".join(t for t, _ in items)
    vals = set().union(*(v for _, v in items))
    return text, vals, text.startswith("*")


def gen_expr(rng):
    """A random expression and what it means."""
    six = rng.random() < 0.25
    hot = {"sec": [0, 30], "min": [0, 15, 30, 45, 59],
           "hour": [0, 1, 2, 3, 23], "dom": [1, 29, 30, 31],
           "mon": [2, 3, 4, 10, 11], "dow": [0, 1, 6]}
    star_p = {"sec": 0.15, "min": 0.12, "hour": 0.25, "dom": 0.6, "mon": 0.6,
              "dow": 0.6}
    spec, texts = {}, []
    for f in FIELDS:
        name = f[0]
        if name == "sec" and not six:
            spec["sec"], spec["sec_star"] = {0}, False
            continue
        text, vals, star = gen_field(rng, f, hot[name], star_p[name])
        spec[name], spec[name + "_star"] = vals, star
        texts.append(text)
    return " ".join(texts), spec


def interval(spec):
    return spec["sec_star"] or spec["min_star"] or spec["hour_star"]


def never(spec):
    """The engine refuses these: no day of the month set exists."""
    if not spec["dow_star"]:
        return False
    for m in spec["mon"]:
        for d in spec["dom"]:
            if d <= [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]:
                return False
    return True


# ---------------------------------------------------------------- Oracle --

class Zone:
    def __init__(self, name):
        self.tz = ZoneInfo(name)
        # the offsets the zone has had since 1970 (sampled daily, +-1 h)
        offs = set()
        day = datetime(1970, 1, 1, tzinfo=UTC)
        while day.year < 2101:
            offs.add(day.astimezone(self.tz).utcoffset().total_seconds())
            day += timedelta(days=1)
        self.off_min = int(min(offs)) - 3600
        self.off_max = int(max(offs)) + 3600

    def local(self, t):
        """Local wall time of instant t, as seconds as if it were UTC."""
        d = datetime.fromtimestamp(t, self.tz)
        return t + int(d.utcoffset().total_seconds())

    def instants(self, lts):
        """The instants whose local wall time is lts: 0, 1 or 2 of them."""
        dt = EPOCH + timedelta(seconds=lts)
        out = set()
        for fold in (0, 1):
            t = int(dt.replace(tzinfo=self.tz, fold=fold).timestamp())
            if self.local(t) == lts:
                out.add(t)
        return sorted(out)

    def after_gap(self, lts):
        """lts does not exist: the first instant whose local time is later."""
        dt = EPOCH + timedelta(seconds=lts)
        a, b = sorted(int(dt.replace(tzinfo=self.tz, fold=f).timestamp())
                      for f in (0, 1))
        a -= 1
        assert self.local(a) < lts < self.local(b)
        while b - a > 1:  # local(a) < lts < local(b)
            mid = (a + b) // 2
            if self.local(mid) > lts:
                b = mid
            else:
                a = mid
        return b


def day_matches(spec, d):
    if d.month not in spec["mon"]:
        return False
    dm = d.day in spec["dom"]
    dw = (d.weekday() + 1) % 7 in spec["dow"]
    if spec["dom_star"] or spec["dow_star"]:
        return dm and dw
    return dm or dw


def candidates(spec, start):
    """Matching local times (seconds as if UTC) >= start, ascending."""
    secs, mins, hours = (sorted(spec[k]) for k in ("sec", "min", "hour"))
    day = (EPOCH + timedelta(seconds=start)).date()
    base = (day - EPOCH.date()).days * 86400
    while day.year < 9999:
        if day_matches(spec, day):
            for h in hours:
                if base + h * 3600 + 3599 < start:
                    continue
                for m in mins:
                    hm = base + h * 3600 + m * 60
                    if hm + 59 < start:
                        continue
                    for s in secs:
                        if hm + s >= start:
                            yield hm + s
        day += timedelta(days=1)
        base += 86400


SEEN = {"gap": 0, "repeated": 0}  # DST cases met, reported at the end


def oracle_next(spec, zone, after_ms):
    tmin = after_ms // 1000 + 1
    best = None
    for lts in candidates(spec, tmin + zone.off_min):
        if best is not None and lts - zone.off_max > best:
            break
        inst = zone.instants(lts)
        if interval(spec):
            fire = inst
        elif inst:
            fire = inst[:1]
        else:
            fire = [zone.after_gap(lts)]
        if len(inst) != 1 and fire and fire[0] >= tmin:
            SEEN["gap" if not inst else "repeated"] += 1
        for t in fire:
            if t >= tmin and (best is None or t < best):
                best = t
    if best is None:
        raise AssertionError("oracle: nothing fires (a bug in the oracle)")
    return best * 1000


def oracle(spec, zone, from_ms, count):
    out, t = [], from_ms
    for _ in range(count):
        t = oracle_next(spec, zone, t)
        out.append(t)
    return out


# ----------------------------------------------------------------- Cases --

def transitions(zone, year):
    """The instants in year at which the zone's UTC offset changes."""
    out = []
    t = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    step = 6 * 3600
    prev = zone.local(t) - t
    while t < end:
        off = zone.local(t + step) - (t + step)
        if off != prev:
            a, b = t, t + step
            while b - a > 1:
                mid = (a + b) // 2
                if zone.local(mid) - mid == prev:
                    a = mid
                else:
                    b = mid
            out.append(b)
            prev = off
        t += step
    return out


def gen_cases(rng, zones, n):
    cases = []
    trans = {}
    for name in DST_ZONES:
        for year in (1995, 2007, 2024, 2026, 2031, 2038, 2045, 2061):
            trans.setdefault(name, []).extend(transitions(zones[name], year))
    for i in range(n):
        expr, spec = gen_expr(rng)
        if i % 10 < 7:  # most next to a DST change
            name = rng.choice(DST_ZONES)
            t = rng.choice(trans[name])
            from_ms = t * 1000 + rng.randint(-8 * 3600000, 3 * 3600000)
        else:
            name = rng.choice(DST_ZONES + OTHER_ZONES)
            from_ms = rng.randint(0, 4102444800000)  # 1970 .. 2100
        if rng.random() < 0.3:
            from_ms -= from_ms % 60000  # on a minute: ticks right after
        cases.append((expr, spec, name, from_ms, 5))
    # a fixed time inside each gap and each repeated hour, and an interval
    # job across it, starting a little before the change
    for name in DST_ZONES:
        zone = zones[name]
        for t in trans[name]:
            before, after = zone.local(t - 1) + 1, zone.local(t)
            lo, hi = min(before, after), max(before, after)
            lts = rng.randrange(lo, hi, 60)
            h, m = lts // 3600 % 24, lts // 60 % 60
            for expr in ("%d %d * * *" % (m, h), "%d,%d %d * * *" % (
                    m, (m + 30) % 60, h), "*/%d * * * *" % rng.choice(
                        [5, 10, 15, 20, 30]), "%d */2 * * *" % m):
                first = expr.split()[0]
                spec = spec_of(expr.replace(first, "0", 1) if "," in first
                               else expr)
                if "," in first:
                    spec["min"] = {m, (m + 30) % 60}
                from_ms = (t - rng.randint(60, 7200)) * 1000
                cases.append((expr, spec, name, from_ms, 4))
    # February 29 over the centuries (2100 is no leap year, 2400 is)
    for expr in ("0 0 29 2 *", "30 12 29 feb *", "0 0 0 29 2 *",
                 "0 0 29 2 mon", "0 9 29 2 */7"):
        for start in (1970, 1999, 2091, 2096, 2390):
            name = rng.choice(DST_ZONES)
            ms = int(datetime(start, 1, 1, tzinfo=UTC).timestamp()) * 1000
            spec = spec_of(expr)
            cases.append((expr, spec, name, ms, 3))
    return cases


def spec_of(expr):
    """The meaning of the few fixed expressions above (plain numbers,
    '*', '*/N', 'feb', 'mon' only)."""
    parts = expr.split()
    if len(parts) == 5:
        parts = ["0"] + parts
    spec = {}
    for f, text in zip(FIELDS, parts):
        name, lo, _, top, names, base = f
        if text == "*":
            vals = set(range(lo, top + 1))
        elif text.startswith("*/"):
            vals = set(range(lo, top + 1, int(text[2:])))
        elif text.isdigit():
            vals = {int(text)}
        else:
            vals = {names.index(text.upper()) + base}
        spec[name], spec[name + "_star"] = vals, text.startswith("*")
    return spec


# ------------------------------------------------------------------ Main --

def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        return 2
    driver, stellar = args[0], args[1]
    ncases = int(os.environ.get("CRON_ORACLE_CASES", "3000"))
    seed = int(os.environ.get("CRON_ORACLE_SEED", "20260101"))
    if "--cases" in args:
        ncases = int(args[args.index("--cases") + 1])
    if "--seed" in args:
        seed = int(args[args.index("--seed") + 1])
    try:
        zones = {n: Zone(n) for n in DST_ZONES + OTHER_ZONES}
    except (ZoneInfoNotFoundError, OSError) as ex:
        print("skip: no tz database for zoneinfo: %s" % ex)
        return 77
    rng = random.Random(seed)
    cases = gen_cases(rng, zones, ncases)

    req = "".join("%s\t%s\t%d\t%d\n" % (e, z, f, n) for e, _, z, f, n in cases)
    res = subprocess.run([driver], input=req, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert len(res) == len(cases), "driver answered %d of %d" % (
        len(res), len(cases))
    bad = refused = nintervals = 0
    for (expr, spec, name, from_ms, n), got in zip(cases, res):
        if never(spec):
            refused += 1
            if not got.startswith("ERR "):
                bad += 1
                print("FAIL: %r should be refused (never fires), got %s"
                      % (expr, got))
            continue
        nintervals += interval(spec)
        want = oracle(spec, zones[name], from_ms, n)
        if got != " ".join(map(str, want)):
            bad += 1
            if bad <= 20:
                print("FAIL: %r --tz %s --from %d\n  want: %s\n  got:  %s"
                      % (expr, name, from_ms,
                         " ".join("%d(%s)" % (w, datetime.fromtimestamp(
                             w / 1000, zones[name].tz).isoformat())
                                  for w in want), got))

    # the CLI: text and --json, against the same oracle and isoformat()
    for expr, spec, name, from_ms, n in cases[:40]:
        if never(spec):
            continue
        want = oracle(spec, zones[name], from_ms, n)
        base = [stellar, "cron", "next", expr, "--tz", name, "--from",
                str(from_ms), "--count", str(n)]
        js = subprocess.run(base + ["--json"], capture_output=True, text=True)
        text = subprocess.run(base, capture_output=True, text=True)
        want_text = "".join("%d %s\n" % (w, datetime.fromtimestamp(
            w // 1000, zones[name].tz).isoformat()) for w in want)
        if js.returncode != 0 or json.loads(js.stdout) != want:
            bad += 1
            print("FAIL: stellar cron next %r --tz %s --from %d --json: %s%s"
                  % (expr, name, from_ms, js.stdout, js.stderr))
        if text.returncode != 0 or text.stdout != want_text:
            bad += 1
            print("FAIL: stellar cron next %r --tz %s --from %d:\n"
                  "want:\n%sgot:\n%s%s" % (expr, name, from_ms, want_text,
                                          text.stdout, text.stderr))

    print("cron oracle: %d cases (%d interval jobs, %d refused as never "
          "firing; %d local times in a gap, %d repeated), seed %d: "
          "%d differences" % (len(cases), nintervals, refused, SEEN["gap"],
                              SEEN["repeated"], seed, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
