//! Running our own network code inside a namespace without a subprocess.
//!
//! A socket belongs to the network namespace of the thread that creates it.
//! [`NetnsRuntime`] is one OS thread that moves itself into a namespace
//! (`setns(2)` on `/run/netns/<name>`) and then runs a single-threaded tokio
//! runtime; every future handed to it is polled there, so the TCP
//! connections it opens (the load generator's gRPC calls through the VIP, the
//! checker's `/readyz` requests) originate inside that namespace. Addresses
//! are always IP literals: name resolution would run on tokio's blocking
//! pool, outside the namespace.

use anyhow::{Context, Result, anyhow};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, oneshot};

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A thread with a tokio runtime inside one network namespace. Dropping it
/// stops the thread (tasks still running are cancelled).
#[derive(Debug)]
pub struct NetnsRuntime {
    ns: String,
    jobs: mpsc::UnboundedSender<Job>,
}

impl NetnsRuntime {
    /// Starts the thread and waits until it has entered `ns`.
    pub fn start(ns: &str) -> Result<NetnsRuntime> {
        let path = format!("/run/netns/{ns}");
        let fd = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let (entered, entered_rx) = std::sync::mpsc::channel::<Result<()>>();
        let name = ns.to_owned();
        std::thread::Builder::new()
            .name(format!("netns-{ns}"))
            .spawn(move || {
                let setup = rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&fd),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| anyhow!("setns into {name}: {e}"))
                .and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("tokio runtime")
                });
                let rt = match setup {
                    Ok(rt) => {
                        let _ = entered.send(Ok(()));
                        rt
                    }
                    Err(e) => {
                        let _ = entered.send(Err(e));
                        return;
                    }
                };
                drop(fd);
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    while let Some(job) = rx.recv().await {
                        tokio::task::spawn_local(job());
                    }
                });
            })
            .context("spawning a namespace thread")?;
        entered_rx
            .recv()
            .map_err(|_| anyhow!("the thread for {ns} died before entering it"))??;
        Ok(NetnsRuntime {
            ns: ns.to_owned(),
            jobs,
        })
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Runs the future made by `make` inside the namespace and returns its output.
    pub async fn run<F, Fut, T>(&self, make: F) -> Result<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let _ = tx.send(make().await);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("the runtime of namespace {} has stopped", self.ns))?;
        rx.await
            .map_err(|_| anyhow!("a task in namespace {} was dropped", self.ns))
    }

    /// Starts the future made by `make` inside the namespace without waiting.
    pub fn spawn<F, Fut>(&self, make: F) -> Result<()>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let job: Job = Box::new(move || Box::pin(make()));
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("the runtime of namespace {} has stopped", self.ns))
    }
}
