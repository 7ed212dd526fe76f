//! CPU time of the local PostgreSQL server, so that a run on PostgreSQL reports what
//! the database cost per operation beside what the server cost.
//!
//! The postmaster is the parent of the backend the loadgen connects with; its own
//! time plus its reaped children's (`cutime`, `cstime`: backends that exited) plus
//! every live child's time (backends, WAL writer, checkpointer, autovacuum) is the
//! server's total. It counts every database of that PostgreSQL server, so run on a
//! quiet one. Loopback only (the loadgen refuses other hosts), Linux `/proc` only.

use std::sync::OnceLock;

static POSTMASTER: OnceLock<u32> = OnceLock::new();

/// Fields of `/proc/<pid>/stat` after the command name, whitespace-separated.
fn stat_fields(pid: &str) -> Vec<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    // state (f[0]) is not a number: keep positions by mapping it to 0
    rest.split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .collect()
}

/// Remembers the postmaster: the parent of the backend whose pid is `backend`.
pub(crate) fn set_backend(backend: i32) {
    let f = stat_fields(&backend.to_string());
    // ppid is field 4 overall = f[1]
    if let Some(&ppid) = f.get(1)
        && ppid > 1
    {
        let _ = POSTMASTER.set(u32::try_from(ppid).unwrap_or(0));
    }
}

/// Total CPU ticks (USER_HZ) of the PostgreSQL server, if its postmaster is known.
pub(crate) fn ticks() -> Option<u64> {
    let pm = *POSTMASTER.get()?;
    let sum = |f: &[u64], with_children: bool| {
        let n = |i: usize| f.get(i).copied().unwrap_or(0);
        // utime f[11], stime f[12], cutime f[13], cstime f[14]
        n(11) + n(12) + if with_children { n(13) + n(14) } else { 0 }
    };
    let mut total = sum(&stat_fields(&pm.to_string()), true);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let f = stat_fields(pid);
        if f.get(1).copied() == Some(u64::from(pm)) {
            total += sum(&f, true);
        }
    }
    Some(total)
}
