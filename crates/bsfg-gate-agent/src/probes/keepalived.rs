//! Is keepalived running in this host's network namespace? Gate 1 needs it:
//! a VIP left behind by a dead keepalived must not keep a controller serving.
//!
//! Cheap on every evaluation: the last pid found is re-checked through
//! `/proc/<pid>/comm` (a zombie counts as gone); `/proc` is scanned again
//! only when it is gone.

use crate::gates::vip::KeepalivedFacts;

#[derive(Debug, Default)]
pub struct KeepalivedProbe {
    pid: Option<u32>,
}

impl KeepalivedProbe {
    pub fn observe(&mut self, required: bool) -> KeepalivedFacts {
        if !required {
            return KeepalivedFacts::Unknown(
                "not required (keepalived.require_running = false)".into(),
            );
        }
        if let Some(pid) = self.pid {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "keepalived" && !crate::host_facts::is_zombie(pid) {
                return KeepalivedFacts::Running { pid };
            }
            self.pid = None;
        }
        match crate::host_facts::find_keepalived() {
            Ok(Some((pid, _))) => {
                self.pid = Some(pid);
                KeepalivedFacts::Running { pid }
            }
            Ok(None) => KeepalivedFacts::NotRunning,
            Err(e) => KeepalivedFacts::Unknown(e),
        }
    }
}
