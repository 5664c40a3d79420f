#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The format rules netdev's CI (NIPA, check_selftest) has for a
selftest folder's config, .gitignore and Makefile.

    selftest_format.py FILE...

The kind of each FILE comes from its base name:

config, .gitignore
    Every line with a "=" that is not a comment is an entry. Entries are
    in non-decreasing order of their key (what comes before the first
    "="), compared with the underscores taken out.

Makefile
    A variable assignment (NAME =, NAME := or NAME +=, NAME in capitals)
    is a block: the assignment line and the lines it continues onto
    with a trailing backslash. In each block:
    - every value line is indented with a tab and holds one value (one
      that holds a "$" may hold spaces), ending " \\" if it continues;
      no line in the list is empty;
    - the values are in order: each is before the next as a string, or
      has no more "/" than it and is not after it ignoring case (fewer
      directories first); values starting with "$" are not compared;
    - a block of more than one line ends with a comment line ("#"),
      which names the variable if it is longer than 5 characters
      ("# end of TEST_PROGS");
    - a variable has one block only.
    Blocks whose first value starts with "$", and variables whose name
    is shorter than 3 characters or holds FLAGS or LIBS, are left alone.

Prints one line per finding, FILE:LINE: what; exit 1 if there is any,
2 on a usage error or a file that cannot be read.
"""
import os
import re
import sys

ASSIGNMENT = re.compile(r"([A-Z_][A-Z0-9_]*)\s*(?::=|\+=|=)(.*)")


def config_key(line):
    """The key of a config or .gitignore entry, as it is sorted."""
    return line.split("=", 1)[0].strip().replace("_", "")


def check_config(lines):
    """(line number, finding) for each entry out of order."""
    findings = []
    prev_num, prev = 0, None
    for num, line in enumerate(lines, 1):
        if line.strip().startswith("#") or "=" not in line:
            continue
        if prev is not None and config_key(line) < config_key(prev):
            findings.append((num, f"'{line.split('=', 1)[0].strip()}' should come before "
                                  f"'{prev.split('=', 1)[0].strip()}' (line {prev_num})"))
        prev_num, prev = num, line
    return findings


def makefile_blocks(lines):
    """The assignment blocks of a Makefile that the rules apply to, as
    (variable, line number of the assignment, [(line number, text)]):
    the text of the assignment line is its value (a tab in front), if it
    has one."""
    blocks = []
    block = None
    for num, line in enumerate(lines, 1):
        match = ASSIGNMENT.fullmatch(line)
        if block is None and match:
            name, value = match.group(1), match.group(2).strip()
            exempt = value.startswith("$") or len(name) < 3 or \
                "FLAGS" in name or "LIBS" in name
            block = (name, num, [], exempt)
            if value != "\\":
                block[2].append((num, "\t" + value))
        elif block is not None:
            block[2].append((num, line))
        if block is not None and not line.endswith("\\"):
            if block[2] and not block[3]:
                blocks.append(block[:3])
            block = None
    if block is not None and block[2] and not block[3]:
        blocks.append(block[:3])
    return blocks


def in_order(first, second):
    """Whether the value first may come right before second."""
    if first < second:
        return True
    return (first.count("/"), first.lower()) <= (second.count("/"), second.lower())


def check_closing(name, block):
    """The value lines of a block, and (line number, finding) for its
    closing comment."""
    num, last = block[-1][0], block[-1][1].strip()
    if not last.startswith("#"):
        if len(block) > 1:
            return block, [(num, f"{name}: the block does not end with a comment line "
                                 f"('# end of {name}')")]
        return block, []
    if len(block) > 1 and len(last) > 5 and name not in last:
        return block[:-1], [(num, f"{name}: the closing comment does not name "
                                  f"the variable: '{last}'")]
    return block[:-1], []


def check_values(name, assignment, body):
    """(line number, finding) for each value line of a block that breaks
    a rule, and for each value out of order."""
    findings = []
    values = []
    for num, line in body:
        if not line.startswith("\t"):
            findings.append((num, f"{name}: not indented with a tab: '{line}'"))
        value = line.strip()
        if value.endswith("\\"):
            if not line[:-1][-1:].isspace():
                findings.append((num, f"{name}: no space before the backslash: '{value}'"))
            value = value[:-1].strip()
        if not value:
            if num != assignment:
                findings.append((num, f"{name}: a line with no value"))
        elif "$" not in value and len(value.split()) > 1:
            findings.append((num, f"{name}: more than one value on a line: '{value}'"))
        elif not value.startswith("$"):
            values.append((num, value))
    for (_, first), (num, second) in zip(values, values[1:]):
        if not in_order(first, second):
            findings.append((num, f"{name}: '{second}' should come before '{first}' "
                                  "(fewer directories first, then alphabetical)"))
    return findings


def check_makefile(lines):
    """(line number, finding) for each rule the Makefile's blocks break."""
    findings = []
    first = {}
    for name, assignment, block in makefile_blocks(lines):
        if name in first:
            findings.append((assignment, f"{name}: assigned again (first at line "
                                         f"{first[name]}): one block per variable"))
        else:
            first[name] = assignment
        body, closing = check_closing(name, block)
        findings += closing + check_values(name, assignment, body)
    return sorted(findings)


CHECKS = {"config": check_config, ".gitignore": check_config, "Makefile": check_makefile}


def main(argv):
    """Check each file argv names; the exit code."""
    if len(argv) < 2:
        print("usage: " + __doc__.split("\n\n", 2)[1].strip(), file=sys.stderr)
        return 2
    status = 0
    for path in argv[1:]:
        check = CHECKS.get(os.path.basename(path))
        if check is None:
            print(f"{path}: not a config, .gitignore or Makefile", file=sys.stderr)
            return 2
        try:
            with open(path, encoding="utf-8") as file:
                lines = file.read().split("\n")
        except (OSError, UnicodeDecodeError) as err:
            print(f"{path}: {err}", file=sys.stderr)
            return 2
        for num, finding in check(lines):
            print(f"{path}:{num}: {finding}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
