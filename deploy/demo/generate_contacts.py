#!/usr/bin/env python3
"""Generate the demo campaign data for outdial.

Writes, next to this script:
  contacts.csv      2,400 contact rows (external_id,name,phone,phone_2,phone_3,timezone)
  suppressions.csv  the 15 DNC numbers (E.164) that appear as primaries in contacts.csv
  unallocated.txt   the 10 primaries the carrier simulator reports as unallocated
  README.md         what the files are and the counts the importer should report

Standard library only and fully deterministic (seeded RNG): running it again
reproduces the same bytes.  Usage:  python3 deploy/demo/generate_contacts.py
"""

import csv
import os
import random

SEED = 20261121
HERE = os.path.dirname(os.path.abspath(__file__))

TOTAL_ROWS = 2400
N_MALFORMED = 20
N_DUPLICATES = 25
N_SUPPRESSED = 15
N_UNALLOCATED = 10
N_UNIQUE = TOTAL_ROWS - N_MALFORMED - N_DUPLICATES  # 2,355 imported contacts
N_WITH_2_OR_MORE = round(0.15 * N_UNIQUE)  # contacts with phone_2 (incl. those with phone_3)
N_WITH_3 = round(0.05 * N_UNIQUE)  # contacts with phone_2 and phone_3
N_EXPLICIT_TZ = round(0.03 * TOTAL_ROWS)  # rows with an explicit IANA zone

# Zone label -> (IANA zone, area codes).  Primaries are spread evenly over the zones.
ZONES = [
    ("Eastern", "America/New_York", ["212", "305", "404", "617", "704", "215"]),
    ("Central", "America/Chicago", ["312", "214", "713", "612", "504", "314"]),
    ("Mountain", "America/Denver", ["303", "801", "505", "406"]),
    ("Arizona", "America/Phoenix", ["602", "480"]),
    ("Pacific", "America/Los_Angeles", ["206", "213", "415", "503", "702", "916"]),
]
AREA_ZONE = {ac: (label, iana) for label, iana, acs in ZONES for ac in acs}

# Malformed primary phones (all rejected by libphonenumber with default region US).
MALFORMED = [
    "",                   # empty
    "call me",            # letters only
    "555-0100",           # too short: 7-digit local number, no area code
    "(012) 555-0100",     # area code starts with 0
    "(123) 555-0100",     # area code starts with 1
    "22125550143",        # 11 digits not starting with 1
    "N/A",
    "212-555-014",        # 9 digits
    "(212) 555-01434",    # 11 digits starting with 2
    "+1 212 555 01",      # too short after +1
    "212-055-0143",       # exchange starts with 0
    "212-155-0143",       # exchange starts with 1
    "+1 555 555 0100",    # 555 is not an area code
    "+1 370 555 0100",    # unassigned area code
    "0000000000",
    "911",
    "+1 (999) 555-0100",  # 999 is not an area code
    "unknown",
    "212 555 O143",       # letter O instead of zero
    "52125550143",        # 11 digits not starting with 1
]
assert len(MALFORMED) == N_MALFORMED

FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Christopher", "Karen", "Charles", "Lisa", "Daniel", "Nancy",
    "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Margaret", "Donald", "Ashley",
    "Steven", "Kimberly", "Andrew", "Emily", "Paul", "Donna", "Joshua", "Michelle",
    "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah",
    "Luis", "Maria", "Carlos", "Ana", "Jose", "Sofia", "Wei", "Mei", "Raj", "Priya",
    "Omar", "Fatima", "Kwame", "Amara", "Hiroshi", "Yuki", "Ivan", "Olga",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson",
    "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
    "Carter", "Roberts", "Chen", "Patel", "Kim", "Okafor", "Tanaka", "Novak", "O'Brien",
    "Sullivan", "Murphy", "Cohen", "Schmidt", "Rossi", "Dubois", "Mensah",
]

# Exchanges never used for "random" numbers: 555 (reserved for the 555-01XX pool),
# N11 service codes, and 950/958/959/976.
EXCLUDED_EXCHANGES = {555, 950, 958, 959, 976}


def fmt(digits10, style):
    """Render a 10-digit NANP number in one of the human notations."""
    a, e, l = digits10[:3], digits10[3:6], digits10[6:]
    if style == 0:
        return f"({a}) {e}-{l}"
    if style == 1:
        return f"{a}-{e}-{l}"
    if style == 2:
        return f"+1 {a} {e} {l}"
    if style == 3:
        return f"{a}{e}{l}"
    return f"+1{a}{e}{l}"


N_STYLES = 5


def e164(digits10):
    return "+1" + digits10


def spread_positions(rng, count, lo, hi):
    """`count` distinct positions in [lo, hi], one per equal-width stratum."""
    width = (hi - lo + 1) / count
    out = []
    for i in range(count):
        a = lo + int(i * width)
        b = lo + int((i + 1) * width) - 1
        out.append(rng.randint(a, b))
    return out


class NumberAllocator:
    """Hands out unique 10-digit numbers per zone: 555-01XX first, then random exchanges."""

    def __init__(self, rng):
        self.rng = rng
        self.used = set()
        self.pool = {}
        for label, _, acs in ZONES:
            nums = [f"{ac}555{line:04d}" for ac in acs for line in range(100, 200)]
            rng.shuffle(nums)
            self.pool[label] = nums
        self.next_ac = {label: 0 for label, _, _ in ZONES}

    def take(self, zone):
        pool = self.pool[zone]
        while pool:
            n = pool.pop()
            if n not in self.used:
                self.used.add(n)
                return n
        acs = next(acs for label, _, acs in ZONES if label == zone)
        while True:
            ac = acs[self.next_ac[zone] % len(acs)]  # round-robin keeps area codes even
            ex = self.rng.randint(200, 999)
            if ex % 100 == 11 or ex in EXCLUDED_EXCHANGES:
                continue
            n = f"{ac}{ex:03d}{self.rng.randint(0, 9999):04d}"
            if n not in self.used:
                self.used.add(n)
                self.next_ac[zone] += 1
                return n


def main():
    rng = random.Random(SEED)

    # --- where the malformed and duplicate rows go (1-based data rows, header excluded) ---
    malformed_rows = spread_positions(rng, N_MALFORMED, 15, TOTAL_ROWS - 40)
    taken = set(malformed_rows)
    duplicate_rows = []
    for pos in spread_positions(rng, N_DUPLICATES, 60, TOTAL_ROWS - 10):
        while pos in taken:
            pos += 1
        taken.add(pos)
        duplicate_rows.append(pos)
    unique_rows = [r for r in range(1, TOTAL_ROWS + 1) if r not in taken]
    assert len(unique_rows) == N_UNIQUE

    # --- zones for the unique contacts: evenly split, shuffled ---
    zone_labels = [z[0] for z in ZONES]
    zones = [zone_labels[i % len(zone_labels)] for i in range(N_UNIQUE)]
    rng.shuffle(zones)

    # --- special roles among the unique contacts ---
    idx = list(range(N_UNIQUE))
    suppressed = set(rng.sample(idx, N_SUPPRESSED))
    rest = [i for i in idx if i not in suppressed]
    unallocated = set(rng.sample(rest, N_UNALLOCATED))
    ordinary = [i for i in idx if i not in suppressed and i not in unallocated]
    multi = rng.sample(ordinary, N_WITH_2_OR_MORE - N_UNALLOCATED)
    with3 = set(rng.sample(multi, N_WITH_3))
    with2 = set(multi) | unallocated
    explicit_tz = set(rng.sample(ordinary, N_EXPLICIT_TZ))

    alloc = NumberAllocator(rng)
    primaries = [alloc.take(z) for z in zones]  # all primaries first: they get the 555-01XX pool
    secondaries = {}
    for i in sorted(with2):
        n2 = alloc.take(zones[i])
        n3 = alloc.take(zones[i]) if i in with3 else None
        secondaries[i] = (n2, n3)

    # --- duplicates: each reuses the primary of a distinct earlier ordinary row ---
    row_to_unique = {r: i for i, r in enumerate(unique_rows)}
    dup_source = {}
    used_sources = set()
    for pos in sorted(duplicate_rows):
        candidates = [
            i for r, i in row_to_unique.items()
            if r < pos and i not in suppressed and i not in unallocated and i not in used_sources
        ]
        src = rng.choice(candidates)
        used_sources.add(src)
        dup_source[pos] = src

    # --- build the rows ---
    malformed_values = MALFORMED[:]
    rng.shuffle(malformed_values)
    malformed_at = dict(zip(sorted(malformed_rows), malformed_values))

    def person():
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"

    names = {}
    rows = []
    primary_style = {}
    for r in range(1, TOTAL_ROWS + 1):
        ext = f"C{r:05d}"
        if r in malformed_at:
            rows.append([ext, person(), malformed_at[r], "", "", ""])
        elif r in dup_source:
            src = dup_source[r]
            style = rng.choice([s for s in range(N_STYLES) if s != primary_style[src]])
            name = person()
            while name == names[src]:
                name = person()
            rows.append([ext, name, fmt(primaries[src], style), "", "", ""])
        else:
            i = row_to_unique[r]
            names[i] = person()
            primary_style[i] = rng.randrange(N_STYLES)
            n2, n3 = secondaries.get(i, (None, None))
            tz = AREA_ZONE[primaries[i][:3]][1] if i in explicit_tz else ""
            rows.append([
                ext,
                names[i],
                fmt(primaries[i], primary_style[i]),
                fmt(n2, rng.randrange(N_STYLES)) if n2 else "",
                fmt(n3, rng.randrange(N_STYLES)) if n3 else "",
                tz,
            ])

    with open(os.path.join(HERE, "contacts.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["external_id", "name", "phone", "phone_2", "phone_3", "timezone"])
        w.writerows(rows)

    with open(os.path.join(HERE, "suppressions.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["phone", "reason"])
        for i in sorted(suppressed):
            w.writerow([e164(primaries[i]), "dnc"])

    with open(os.path.join(HERE, "unallocated.txt"), "w", encoding="utf-8") as f:
        f.write("# Read by the carrier simulator in the demo: calls to these numbers "
                "(valid per libphonenumber) are reported as unallocated. One E.164 number per line.\n")
        for i in sorted(unallocated):
            f.write(e164(primaries[i]) + "\n")

    # --- README with the counts ---
    per_zone = {label: 0 for label in zone_labels}
    per_ac = {}
    for n in primaries:
        per_zone[AREA_ZONE[n[:3]][0]] += 1
        per_ac[n[:3]] = per_ac.get(n[:3], 0) + 1
    n_555 = sum(1 for n in primaries if n[3:6] == "555")
    zone_lines = "\n".join(
        f"| {label} (`{iana}`) | {', '.join(f'{ac}: {per_ac.get(ac, 0)}' for ac in acs)} | {per_zone[label]} |"
        for label, iana, acs in ZONES
    )
    malformed_list = ", ".join(str(r) for r in sorted(malformed_rows))
    dup_list = ", ".join(f"{r}→{unique_rows[dup_source[r]]}" for r in sorted(duplicate_rows))
    supp_rows = ", ".join(str(unique_rows[i]) for i in sorted(suppressed))
    unalloc_rows = ", ".join(str(unique_rows[i]) for i in sorted(unallocated))
    only2 = len(with2) - len(with3)

    readme = f"""# Demo campaign data

Generated by `generate_contacts.py` (Python 3, standard library only, seeded with
`random.Random({SEED})`, so the output is byte-for-byte reproducible). Regenerate from the
repository root with:

    python3 deploy/demo/generate_contacts.py

| File | What it is |
|---|---|
| `contacts.csv` | Contacts to import: `external_id,name,phone,phone_2,phone_3,timezone`. Phones are US numbers in mixed notations (`(212) 555-0143`, `212-555-0143`, `+1 212 555 0143`, `2125550143`, `+12125550143`). `timezone` is usually empty (derived from the area code); some rows give an explicit IANA zone matching the area code. |
| `suppressions.csv` | DNC list (`phone,reason`), E.164, reason `dnc`. Every entry is the primary phone of one contact. |
| `unallocated.txt` | E.164 numbers the carrier simulator answers as "unallocated number". Valid per libphonenumber. Each of these contacts also has a valid `phone_2`. |
| `generate_contacts.py` | The generator. |

Numbers are fictional-style: {n_555} of the {N_UNIQUE} primaries are `NXX-555-0100`..`0199`; the others
(and most secondaries) use exchanges 2XX-9XX (excluding N11, 555, 950, 958, 959, 976) with random lines.
All valid numbers were checked with Google libphonenumber (`phonenumbers` for Python,
`is_valid_number(parse(n, "US"))`, versions 9.0.43 and 9.0.33; 9.0.33 is the metadata shipped with the Rust
`phonenumber` 0.3.10 crate); all malformed primaries fail that check. Note that three malformed
primaries (`+1 555 555 0100`, `+1 370 555 0100`, `+1 (999) 555-0100`) are well-formed NANP digit
strings with unassigned area codes: only a metadata-based check rejects them, a `[2-9]XX-[2-9]XX-XXXX`
shape check would accept them and report 17 malformed instead of 20.

## Expected import result

Row numbers below are **1-based data rows, header not counted** (file line = row + 1).

| | Count |
|---|---|
| Rows read | {TOTAL_ROWS} |
| Malformed (primary phone invalid, row rejected) | {N_MALFORMED} |
| Duplicates (primary phone already imported, row skipped) | {N_DUPLICATES} |
| Imported contacts (valid, unique primary) | {N_UNIQUE} |
| ... cancelled as DNC at dial time (primary in `suppressions.csv`) | {N_SUPPRESSED} |
| ... primary in `unallocated.txt` (each has a valid `phone_2`) | {N_UNALLOCATED} |
| Contacts with exactly 1 number | {N_UNIQUE - len(with2)} |
| Contacts with 2 numbers (`phone_2` only) | {only2} |
| Contacts with 3 numbers (`phone_2` and `phone_3`) | {len(with3)} |
| Contacts with `phone_2` (2 or 3 numbers) | {len(with2)} |
| Rows with an explicit `timezone` | {N_EXPLICIT_TZ} |
| Distinct valid phone numbers in the file | {N_UNIQUE + len(with2) + len(with3)} |

Malformed rows: {malformed_list}.

Duplicate rows (duplicate → earlier row whose primary it reuses, usually in another notation):
{dup_list}.

Suppressed (DNC) contacts at rows: {supp_rows}.

Unallocated-primary contacts at rows: {unalloc_rows}.

Malformed rows and duplicate rows carry no `phone_2`/`phone_3`. Secondary numbers are unique and
never equal any primary. Suppressed contacts have only a primary number, so all 15 end as DNC.

## Imported contacts per time zone (by primary area code)

| Zone | Per area code | Contacts |
|---|---|---|
{zone_lines}
"""
    with open(os.path.join(HERE, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme)


if __name__ == "__main__":
    main()
