//! The system under test as one value: the stores and the platform processes, with
//! the fault injector and a supervisor that restarts a process which exited on its
//! own (as systemd or Kubernetes would), counting each such exit.

use crate::procs::Proc;
use crate::schedule::{Fault, Kind};
use crate::stack::{Postgres, Rabbit, Redis, signal};
use std::time::{Duration, Instant};

pub struct System {
    pub pg: Postgres,
    pub rabbit: Rabbit,
    pub redis: Redis,
    pub ingress: Proc,
    pub workers: Vec<Proc>,
    pub pool: sqlx::PgPool,
    pub t0: Instant,
    /// Exits nobody caused: (time, process, status).
    pub exits: Vec<(f64, String, String)>,
}

/// A fault as it happened: seconds from the start of the load.
#[derive(Clone, Debug)]
pub struct FaultRun {
    pub kind: Kind,
    pub target: String,
    pub start: f64,
    pub end: f64,
    pub error: Option<String>,
}

impl System {
    pub fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Restarts every platform process that exited on its own.
    pub fn supervise(&mut self) {
        let now = self.now();
        for p in std::iter::once(&mut self.ingress).chain(self.workers.iter_mut()) {
            if let Some(status) = p.exited() {
                self.exits.push((now, p.name.clone(), status));
                if let Err(e) = p.start() {
                    eprintln!("soak: cannot restart {}: {e:#}", p.name);
                }
            }
        }
    }

    /// Waits `secs`, supervising meanwhile.
    pub async fn wait(&mut self, secs: f64) {
        let until = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
        while Instant::now() < until {
            self.supervise();
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_millis(500))).await;
        }
        self.supervise();
    }

    /// The workers process that owns most partitions (the active one): the
    /// partition owner is "{host}-{pid}-{random}". The first one when the
    /// database cannot tell.
    async fn active_worker(&self) -> usize {
        let owners: Vec<(Option<String>,)> =
            sqlx::query_as("select owner from partitions where owner is not null")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        let count = |pid: u32| {
            owners
                .iter()
                .filter(|(o,)| {
                    o.as_deref()
                        .and_then(|o| o.rsplit('-').nth(1))
                        .and_then(|p| p.parse::<u32>().ok())
                        == Some(pid)
                })
                .count()
        };
        (0..self.workers.len())
            .max_by_key(|&i| (self.workers[i].pid().map_or(0, count), usize::MAX - i))
            .unwrap_or(0)
    }

    /// Injects one fault and undoes it after its pause.
    pub async fn inject(&mut self, f: &Fault) -> FaultRun {
        let start = self.now();
        let (target, res) = match f.kind {
            Kind::KillWorkers | Kind::StopWorkers => {
                let i = self.active_worker().await;
                let name = self.workers[i].name.clone();
                (name, self.fault_worker(i, f).await)
            }
            Kind::KillIngress => {
                let r = self.ingress.kill().await;
                self.wait(f.pause).await;
                ("ingress".into(), r.and_then(|()| self.ingress.start()))
            }
            Kind::RabbitStop | Kind::RabbitKill => {
                let r = if f.kind == Kind::RabbitStop {
                    self.rabbit.stop().await
                } else {
                    self.rabbit.kill().await
                };
                self.wait(f.pause).await;
                let started = self.rabbit.start().await;
                ("rabbitmq".into(), r.and(started))
            }
            Kind::PgRestart => ("postgresql".into(), self.pg.restart().await),
            Kind::PgOutage => {
                let r = self.pg.stop().await;
                self.wait(f.pause).await;
                ("postgresql".into(), r.and(self.pg.start().await))
            }
            Kind::RedisRestart => {
                let r = self.redis.kill().await;
                self.wait(f.pause).await;
                ("redis".into(), r.and(self.redis.start().await))
            }
        };
        let end = match (f.kind, self.rabbit.ready_at) {
            (Kind::RabbitStop | Kind::RabbitKill, Some(ready)) => {
                ready.saturating_duration_since(self.t0).as_secs_f64()
            }
            _ => self.now(),
        };
        FaultRun {
            kind: f.kind,
            target,
            start,
            end,
            error: res.err().map(|e| format!("{e:#}")),
        }
    }

    async fn fault_worker(&mut self, i: usize, f: &Fault) -> anyhow::Result<()> {
        if f.kind == Kind::KillWorkers {
            self.workers[i].kill().await?;
            self.wait(f.pause).await;
            return self.workers[i].start();
        }
        let pid = self.workers[i]
            .pid()
            .ok_or_else(|| anyhow::anyhow!("no pid"))?;
        signal(pid, "STOP").await?;
        // Not `wait`: a stopped process has not exited, nothing to supervise.
        tokio::time::sleep(Duration::from_secs_f64(f.pause)).await;
        signal(pid, "CONT").await
    }

    /// Stops everything (the platform first, then the stores). Every part also stops
    /// when dropped (an error, Ctrl-C): the processes are killed, the stores too.
    pub async fn shutdown(&mut self) {
        let grace = Duration::from_secs(10);
        self.ingress.stop(grace).await;
        for w in &mut self.workers {
            w.stop(grace).await;
        }
        self.pool.close().await;
        if self.rabbit.pid.is_some() {
            drop(self.rabbit.stop().await);
        }
        drop(self.redis.kill().await);
        drop(self.pg.stop().await);
    }
}
