//! The controller's exit statuses (sysexits.h): how it tells its supervisor,
//! the gate agent, why it ended. The agent decides on them (75: another host
//! holds the lease, so stand by instead of demoting; 79: fenced, so return
//! to standby) and shows their meaning
//! in `/status` (`controller.last_exit`).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ControllerExit {
    /// EX_UNAVAILABLE: JetStream unreachable, or the service address (the
    /// VIP) could not be bound.
    Unavailable = 69,
    /// EX_SOFTWARE: internal error.
    Software = 70,
    /// EX_TEMPFAIL: the zone lease is held by another host.
    LeaseHeld = 75,
    /// EX_CONFIG: configuration error (the message names the key).
    Config = 78,
    /// Fenced: the service address (the VIP) is not on this host, or another
    /// controller took the zone lease. Not a fault of this host; only the
    /// gate agent starts a controller again.
    Fenced = 79,
}

impl ControllerExit {
    pub const ALL: [ControllerExit; 5] = [
        ControllerExit::Unavailable,
        ControllerExit::Software,
        ControllerExit::LeaseHeld,
        ControllerExit::Config,
        ControllerExit::Fenced,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status a process exit code stands for; `None` for 0 and codes
    /// the controller does not use.
    pub fn from_code(code: i32) -> Option<ControllerExit> {
        Self::ALL.into_iter().find(|e| i32::from(e.code()) == code)
    }

    /// What it means, for operators.
    pub fn meaning(self) -> &'static str {
        match self {
            ControllerExit::Unavailable => "could not bind the VIP or reach JetStream",
            ControllerExit::Software => "internal error",
            ControllerExit::LeaseHeld => "the zone lease is held by another host",
            ControllerExit::Config => "configuration error",
            ControllerExit::Fenced => {
                "fenced: the VIP left this host or another controller took the lease"
            }
        }
    }
}

impl fmt::Display for ControllerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_zero_is_none() {
        for e in ControllerExit::ALL {
            assert_eq!(ControllerExit::from_code(i32::from(e.code())), Some(e));
        }
        assert_eq!(ControllerExit::from_code(0), None);
        assert_eq!(ControllerExit::from_code(1), None);
        assert_eq!(
            ControllerExit::LeaseHeld.to_string(),
            "75 (the zone lease is held by another host)"
        );
        assert_eq!(ControllerExit::from_code(79), Some(ControllerExit::Fenced));
    }
}
