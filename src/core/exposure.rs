//! Which tasks and events exist, and (under Runner) which are allow-listed.

#![forbid(unsafe_code)]

use std::collections::HashMap;

use super::envelope::ProtocolError;

/// A snapshot of the registered handlers; replaced whole on every change so
/// requests read it without locking.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    tasks: HashMap<String, u32>,
    events: HashMap<String, u32>,
    task_order: Vec<String>,
    event_order: Vec<String>,
    allow_list: Option<AllowList>,
}

/// Runner's allow-list, computed from its tunnel resources.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    pub enabled: bool,
    pub allow_open: bool,
    pub tasks: Vec<String>,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Task,
    Event,
}

impl Registry {
    pub fn with_task(&self, id: &str, handler: u32) -> Registry {
        let mut next = self.clone();
        if next.tasks.insert(id.to_string(), handler).is_none() {
            next.task_order.push(id.to_string());
        }
        next
    }

    pub fn with_event(&self, id: &str, handler: u32) -> Registry {
        let mut next = self.clone();
        if next.events.insert(id.to_string(), handler).is_none() {
            next.event_order.push(id.to_string());
        }
        next
    }

    pub fn without(&self, kind: Kind, id: &str) -> Registry {
        let mut next = self.clone();
        match kind {
            Kind::Task => {
                next.tasks.remove(id);
                next.task_order.retain(|t| t != id);
            }
            Kind::Event => {
                next.events.remove(id);
                next.event_order.retain(|t| t != id);
            }
        }
        next
    }

    /// Adds (or replaces) a handler in place, for building a registry.
    pub fn add(&mut self, kind: Kind, id: &str, handler: u32) {
        let (map, order) = match kind {
            Kind::Task => (&mut self.tasks, &mut self.task_order),
            Kind::Event => (&mut self.events, &mut self.event_order),
        };
        if map.insert(id.to_string(), handler).is_none() {
            order.push(id.to_string());
        }
    }

    /// The handler registered for an id, allow-listed or not.
    pub fn handler(&self, kind: Kind, id: &str) -> Option<u32> {
        match kind {
            Kind::Task => self.tasks.get(id).copied(),
            Kind::Event => self.events.get(id).copied(),
        }
    }

    pub fn allow_list(&self) -> Option<&AllowList> {
        self.allow_list.as_ref()
    }

    pub fn with_allow_list(&self, allow_list: Option<AllowList>) -> Registry {
        let mut next = self.clone();
        next.allow_list = allow_list;
        next
    }

    pub fn task_ids(&self) -> &[String] {
        &self.task_order
    }

    pub fn event_ids(&self) -> &[String] {
        &self.event_order
    }

    /// The handler for an id, or the protocol error the reference gives:
    /// allow-list first (403), then existence (404).
    pub fn resolve(&self, kind: Kind, id: &str) -> Result<u32, ProtocolError> {
        if let Some(list) = &self.allow_list {
            if !list.enabled {
                if !list.allow_open {
                    return Err(ProtocolError::ExposureNotEnabled);
                }
            } else {
                let listed = match kind {
                    Kind::Task => list.tasks.iter().any(|t| t == id),
                    Kind::Event => list.events.iter().any(|e| e == id),
                };
                if !listed {
                    return Err(match kind {
                        Kind::Task => ProtocolError::TaskNotExposed(id.into()),
                        Kind::Event => ProtocolError::EventNotExposed(id.into()),
                    });
                }
            }
        }
        let found = match kind {
            Kind::Task => self.tasks.get(id),
            Kind::Event => self.events.get(id),
        };
        found.copied().ok_or_else(|| match kind {
            Kind::Task => ProtocolError::TaskNotFound(id.into()),
            Kind::Event => ProtocolError::EventNotFound(id.into()),
        })
    }

    /// `(enabled, tasks, events)` for discovery.
    pub fn discovery(&self) -> (bool, &[String], &[String]) {
        match &self.allow_list {
            Some(list) => (list.enabled, &list.tasks, &list.events),
            None => (true, &self.task_order, &self.event_order),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_task_is_404_not_found() {
        let r = Registry::default().with_task("a", 0);
        assert_eq!(r.resolve(Kind::Task, "a"), Ok(0));
        assert_eq!(
            r.resolve(Kind::Task, "b"),
            Err(ProtocolError::TaskNotFound("b".into()))
        );
        assert_eq!(
            r.resolve(Kind::Event, "a"),
            Err(ProtocolError::EventNotFound("a".into()))
        );
    }

    #[test]
    fn unregistering_removes_from_lookup_and_discovery() {
        let r = Registry::default()
            .with_task("a", 0)
            .with_task("b", 1)
            .without(Kind::Task, "a");
        assert!(r.resolve(Kind::Task, "a").is_err());
        assert_eq!(r.discovery().1, &["b".to_string()]);
    }

    #[test]
    fn allow_list_is_checked_before_existence_like_the_reference() {
        let list = AllowList {
            enabled: true,
            allow_open: false,
            tasks: vec!["a".into()],
            events: vec![],
        };
        let r = Registry::default()
            .with_task("b", 0)
            .with_allow_list(Some(list));
        assert_eq!(
            r.resolve(Kind::Task, "b"),
            Err(ProtocolError::TaskNotExposed("b".into()))
        );
        assert_eq!(
            r.resolve(Kind::Task, "a"),
            Err(ProtocolError::TaskNotFound("a".into()))
        );
        let closed = Registry::default().with_allow_list(Some(AllowList::default()));
        assert_eq!(
            closed.resolve(Kind::Event, "x"),
            Err(ProtocolError::ExposureNotEnabled)
        );
        let open = Registry::default()
            .with_event("x", 3)
            .with_allow_list(Some(AllowList {
                allow_open: true,
                ..Default::default()
            }));
        assert_eq!(open.resolve(Kind::Event, "x"), Ok(3));
    }
}
