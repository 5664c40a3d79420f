#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The series of patches/ as commits of a kernel git tree, and back.

A series is a folder patches/<N-name>/. Its 0*.patch files are the
commits: each has the commit message and the edits to files the base
kernel already has. The files a commit adds live in the repository,
at their in-tree path or elsewhere, and the series' `files` manifest
says which commit brings which:

    # patch  in-tree path                       [repository path] [drop=ERE]
    0001     drivers/net/netdevsim/ipsec_pkt.c
    0004     net/xfrm/direct_tx/Makefile         rust/Kbuild

A path listed again by a later commit is that commit's version of the
file; drop=ERE makes an earlier version of it by leaving out the lines
that match ERE (the first series' selftest config, without the hook's
options).

    series.py apply TREE FROM DIR      commits on FROM, printed: the last
    series.py export TREE FROM TIP DIR FROM..TIP back into DIR
    series.py files DIR                the repository paths DIR brings
    series.py record TREE DIR...       note the repository files as TREE
                                       has them (export then keeps a file
                                       that only the repository changed)
"""

import os
import re
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def die(msg):
    sys.exit(f"error: {msg}")


def git(tree, *args, env=None, data=None, raw=False):
    full_env = dict(os.environ)
    full_env.update(env or {})
    res = subprocess.run(["git", "-C", tree, *args], input=data, capture_output=True,
                         env=full_env, check=False)
    if res.returncode:
        die(f"git {' '.join(args[:3])}: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout if raw else res.stdout.decode()


def patches(folder):
    folder = os.path.abspath(folder)
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if re.fullmatch(r"\d{4}-.*\.patch", f))


def manifest(folder, check_patches=True):
    """{patch number: [(in-tree path, repository path, drop ERE or None)]}"""
    entries = {}
    path = os.path.join(folder, "files")
    if not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            drop = None
            if fields[-1].startswith("drop="):
                drop = fields.pop()[len("drop="):]
            if len(fields) not in (2, 3) or not re.fullmatch(r"\d{4}", fields[0]):
                die(f"{path}:{lineno}: expected 'NNNN in-tree-path [repository-path] [drop=ERE]'")
            src = fields[2] if len(fields) == 3 else fields[1]
            if not os.path.isfile(os.path.join(TOP, src)):
                die(f"{path}:{lineno}: {src}: no such file in the repository")
            entries.setdefault(fields[0], []).append((fields[1], src, drop))
    numbers = {os.path.basename(p)[:4] for p in patches(folder)}
    for n in entries:
        if check_patches and n not in numbers:
            die(f"{path}: no patch {n}-*.patch for its files")
    return entries


def content(src, drop):
    with open(os.path.join(TOP, src), "rb") as f:
        data = f.read()
    if drop:
        keep = [line for line in data.decode().splitlines(keepends=True)
                if not re.search(drop, line)]
        data = "".join(keep).encode()
    return data


def has_diff(patch):
    with open(patch, encoding="utf-8") as f:
        return any(line.startswith("diff --git ") for line in f)


def mailinfo(tree, patch):
    with tempfile.TemporaryDirectory() as tmp:
        msg, diff = os.path.join(tmp, "msg"), os.path.join(tmp, "diff")
        with open(patch, "rb") as f:
            info = git(tree, "mailinfo", "-b", msg, diff, data=f.read())
        with open(msg, encoding="utf-8") as f:
            body = f.read().strip("\n")
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    text = fields.get("Subject", "") + ("\n\n" + body if body else "") + "\n"
    return fields, text


def apply(tree, base, folder):
    """The series' commits on BASE in TREE; the work tree and index stay."""
    files = manifest(folder)
    commit = git(tree, "rev-parse", base).strip()
    # SIGNOFF_IDENT="Name <email>": the submitter's, for From: and
    # Signed-off-by: (make patches SIGNOFF=1).
    signoff = None
    m = re.fullmatch(r"(.+) <([^<>]+)>", os.environ.get("SIGNOFF_IDENT", ""))
    if m:
        signoff = (m.group(1), m.group(2))
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        git(tree, "read-tree", commit, env=env)
        for patch in patches(folder):
            name = os.path.relpath(patch, TOP)
            if has_diff(patch):
                res = subprocess.run(["git", "-C", tree, "apply", "--cached", patch],
                                     capture_output=True, env={**os.environ, **env}, check=False)
                if res.returncode:
                    err = res.stderr.decode(errors="replace")
                    m = re.search(r"patch failed: ([^:]+):|error: ([^:]+): does not exist", err)
                    where = f": {m.group(1) or m.group(2)}" if m else ""
                    sys.stderr.write(err)
                    die(f"patch {name} does not apply to {base}{where}")
            for path, src, drop in files.get(os.path.basename(patch)[:4], []):
                sha = git(tree, "hash-object", "-w", "--stdin", data=content(src, drop)).strip()
                mode = "100755" if os.access(os.path.join(TOP, src), os.X_OK) else "100644"
                git(tree, "update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}", env=env)
            fields, text = mailinfo(tree, patch)
            author = {"GIT_AUTHOR_NAME": fields.get("Author", ""),
                      "GIT_AUTHOR_EMAIL": fields.get("Email", ""),
                      "GIT_AUTHOR_DATE": fields.get("Date", "")}
            if signoff:
                if re.search(r"(?m)^Signed-off-by:", text):
                    die(f"{name} has a Signed-off-by already: the submitter's is added here")
                author["GIT_AUTHOR_NAME"], author["GIT_AUTHOR_EMAIL"] = signoff
                text = git(tree, "interpret-trailers", "--trailer",
                           f"Signed-off-by: {signoff[0]} <{signoff[1]}>", data=text.encode())
            tree_id = git(tree, "write-tree", env=env).strip()
            commit = git(tree, "commit-tree", tree_id, "-p", commit, env=author,
                         data=text.encode()).strip()
    return commit


def strip_files(patch_text, paths):
    """PATCH_TEXT without the diffs of PATHS, nor its diffstat."""
    head, sep, rest = patch_text.partition("\n---\n")
    if not sep:
        return patch_text
    parts = re.split(r"(?m)^(?=diff --git )", rest)
    kept = []
    for part in parts[1:]:
        m = re.match(r"diff --git a/(\S+) b/(\S+)", part)
        if m and m.group(2) not in paths:
            kept.append(part)
    tail = "".join(kept)
    # format-patch ends the last diff with "-- \n<git version>\n".
    tail = re.sub(r"(?s)\n-- \n[^\n]*\n*$", "\n", tail)
    return head + "\n---\n" + tail + ("" if tail.endswith("\n") else "\n")


def export(tree, base, tip, folder):
    """FROM..TIP of TREE back into FOLDER: its patches, the numbers in its
    manifest (a manifest line goes with the commit that changes its path),
    and the repository files the manifest names."""
    files = manifest(folder, check_patches=False)
    commits = git(tree, "rev-list", "--reverse", f"{base}..{tip}").split()
    changed = {}
    for i, c in enumerate(commits, 1):
        for path in git(tree, "diff", "--name-only", f"{c}^", c).split():
            changed.setdefault(path, []).append(f"{i:04d}")
    by_path = {}
    for number in sorted(files):
        for path, _, _ in files[number]:
            by_path.setdefault(path, []).append(number)
    renumber = {}
    for path, numbers in by_path.items():
        got = changed.get(path, [])
        if len(got) != len(numbers):
            die(f"{folder}/files: {path} has {len(numbers)} lines, and {len(got)} commits "
                f"of {tip} change it")
        renumber.update({(old, path): new for old, new in zip(numbers, got)})
    for i, c in enumerate(commits, 1):
        added = set(git(tree, "diff", "--name-only", "--diff-filter=A", f"{c}^", c).split())
        stray = added - set(by_path)
        if stray:
            die(f"commit {i} of {tip} adds {', '.join(sorted(stray))}: "
                f"list it in {folder}/files and add it to the repository")
        # A file an earlier series added is no file of the base: a change
        # to it is a new version of it, which this series' files lists.
        for path in git(tree, "diff", "--name-only", "--diff-filter=M", f"{c}^", c).split():
            if path not in by_path and subprocess.run(
                    ["git", "-C", tree, "cat-file", "-e", f"base:{path}"],
                    capture_output=True, check=False).returncode:
                die(f"commit {i} of {tip} changes {path}, which an earlier series adds: "
                    f"change it in that series, or list it in {folder}/files")
    # The repository's copy of each file is its last version in the series,
    # unless the tree left the file as it was when the tree was made (the
    # record, SRC SHA lines) and the repository's copy changed since; a
    # file changed on both sides stops the export, before anything is
    # written.
    record = read_record(tree)
    writes = []
    for file_path, numbers in by_path.items():
        entry = [e for e in files[numbers[-1]] if e[0] == file_path][0]
        _, src, drop = entry
        if drop:
            continue
        commit = commits[int(renumber[(numbers[-1], file_path)]) - 1]
        data = git(tree, "show", f"{commit}:{file_path}", raw=True)
        with open(os.path.join(TOP, src), "rb") as f:
            current = f.read()
        if data == current:
            continue
        then = record.get(src)
        if then is not None and blob_id(current) != then:
            if blob_id(data) == then:
                continue
            die(f"{src} changed in the repository since the tree was made, and in "
                f"{tree} too: bring one change into the other by hand, then export")
        writes.append((src, data))
    for patch in patches(folder):
        os.unlink(patch)
    for i, c in enumerate(commits, 1):
        with tempfile.TemporaryDirectory() as tmp:
            git(tree, "format-patch", "-q", "-1", "--no-signature", "--zero-commit",
                f"--start-number={i}",
                "-o", tmp, c)
            (name,) = os.listdir(tmp)
            with open(os.path.join(tmp, name), encoding="utf-8") as f:
                text = f.read()
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(strip_files(text, set(by_path)))
    path = os.path.join(folder, "files")
    if files:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        with open(path, "w", encoding="utf-8") as f:
            for line in lines:
                fields = line.split("#", 1)[0].split()
                if fields:
                    line = line.replace(fields[0], renumber[(fields[0], fields[1])], 1)
                f.write(line)
    for src, data in writes:
        with open(os.path.join(TOP, src), "wb") as f:
            f.write(data)
        record[src] = blob_id(data)
    write_record(tree, record)


def blob_id(data):
    return git(TOP, "hash-object", "--stdin", data=data).strip()


def record_path(tree):
    return os.path.join(git(tree, "rev-parse", "--absolute-git-dir").strip(), "xdt-files")


def read_record(tree):
    path = record_path(tree)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return dict(line.split() for line in f if line.strip())


def write_record(tree, record):
    with open(record_path(tree), "w", encoding="utf-8") as f:
        for src in sorted(record):
            f.write(f"{src} {record[src]}\n")


def record(tree, folders):
    """What the repository files of FOLDERS are as TREE is made of them."""
    rec = read_record(tree)
    for folder in folders:
        for entries in manifest(folder).values():
            for _, src, _ in entries:
                with open(os.path.join(TOP, src), "rb") as f:
                    rec[src] = blob_id(f.read())
    write_record(tree, rec)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "apply":
        print(apply(*sys.argv[2:]))
    elif len(sys.argv) == 6 and sys.argv[1] == "export":
        export(*sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "record":
        record(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 3 and sys.argv[1] == "files":
        for entries in manifest(sys.argv[2]).values():
            for _, src, _ in entries:
                print(src)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
