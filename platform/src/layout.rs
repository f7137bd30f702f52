//! The partition layout every producer of commands routes by, and the fence that
//! lets an operator grow the partition count under load (`docs/repartition.md`).
//!
//! A producer routes by the layout a read of PostgreSQL saw, and that view is valid
//! for [`STALE`] after the read *began*. A publish counts as accepted only if its
//! broker confirm arrives within that validity, or a read begun after the confirm
//! still shows the same generation current. So once a new layout is committed at T,
//! no producer accepts a command routed by the old one after T + `STALE` (each by its
//! own clock: only durations are compared), and `bookctl partitions grow` seals the
//! old queues after T + `STALE` + a margin.

use contracts::Topology;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a read of the layout may be relied on after it began.
pub const STALE: Duration = Duration::from_secs(2);
/// How often the layout is read.
const READ_EVERY: Duration = Duration::from_millis(500);

/// A layout generation: its number and partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub generation: u16,
    pub partitions: u16,
}

/// The states of a layout generation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutState {
    /// Its queues exist; producers do not route to it yet; its runners wait.
    Declared,
    /// Producers route to it.
    Current,
    /// Replaced: its partitions are being sealed and drained.
    Retiring,
    /// Drained; its queues are gone.
    Retired,
}

impl LayoutState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declared => "declared",
            Self::Current => "current",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Declared, Self::Current, Self::Retiring, Self::Retired]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// One row of `partition_layouts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    pub layout: Layout,
    pub state: LayoutState,
}

/// Every layout generation, oldest first. The first process to find none writes
/// generation 1 with `first_partitions` (`amqp.partitions`) as current.
pub async fn generations(
    pool: &PgPool,
    first_partitions: u16,
) -> Result<Vec<Generation>, sqlx::Error> {
    let read = || async {
        let rows: Vec<(i16, i16, String)> = sqlx::query_as(
            "select generation, partitions, state from partition_layouts order by generation",
        )
        .fetch_all(pool)
        .await?;
        Ok::<_, sqlx::Error>(
            rows.into_iter()
                .filter_map(|(g, n, st)| {
                    Some(Generation {
                        layout: Layout {
                            generation: u16::try_from(g).ok()?,
                            partitions: u16::try_from(n).ok()?,
                        },
                        state: LayoutState::parse(&st)?,
                    })
                })
                .collect::<Vec<_>>(),
        )
    };
    let found = read().await?;
    if !found.is_empty() {
        return Ok(found);
    }
    sqlx::query(
        "insert into partition_layouts (generation, partitions, state, flipped_at)
         values (1, $1, 'current', now()) on conflict do nothing",
    )
    .bind(i16::try_from(first_partitions).unwrap_or(i16::MAX))
    .execute(pool)
    .await?;
    read().await
}

/// The current layout among `gens`.
pub fn current(gens: &[Generation]) -> Option<Layout> {
    gens.iter()
        .find(|g| g.state == LayoutState::Current)
        .map(|g| g.layout)
}

/// Why a command could not be routed safely.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("the partition layout could not be read for {0:?}")]
    Unknown(Duration),
    #[error(
        "the partition layout changed while this command was being confirmed; \
         it was not accepted (a retry routes it by the new layout)"
    )]
    Moved,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    layout: Layout,
    read_started: Instant,
}

/// The routing of one command: the names of the layout it goes to.
#[derive(Debug, Clone)]
pub struct Routed {
    pub topology: Topology,
    read_started: Instant,
}

/// A view of the current layout, read every [`READ_EVERY`] on a connection of its
/// own (a busy pool must not age it). Cheap to clone; the reader stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct LayoutWatch {
    root: Topology,
    rx: watch::Receiver<Option<Seen>>,
}

impl LayoutWatch {
    /// Starts reading the layout of `root`'s deployment (its prefix; its partition
    /// count is generation 1's when there is none yet) with `pool`'s settings.
    pub fn spawn(pool: &PgPool, root: Topology) -> Self {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(STALE)
            .connect_lazy_with((*pool.connect_options()).clone());
        let (tx, rx) = watch::channel(None);
        tokio::spawn(read_loop(own, root.partitions, tx));
        Self { root, rx }
    }

    /// The layout to route a command by: from a read begun less than [`STALE`] ago,
    /// waiting up to [`STALE`] for one.
    pub async fn route(&self) -> Result<Routed, LayoutError> {
        let seen = self.seen(|s| s.read_started.elapsed() < STALE).await?;
        Ok(Routed {
            topology: self
                .root
                .at_layout(seen.layout.generation, seen.layout.partitions),
            read_started: seen.read_started,
        })
    }

    /// The first read of the layout that satisfies `ok`, waiting up to [`STALE`].
    async fn seen(&self, ok: impl Fn(&Seen) -> bool) -> Result<Seen, LayoutError> {
        let mut rx = self.rx.clone();
        tokio::time::timeout(STALE, rx.wait_for(|s| s.as_ref().is_some_and(&ok)))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|s| *s)
            .ok_or(LayoutError::Unknown(STALE))
    }

    /// After the broker confirmed a command routed by `routed`: whether it may be
    /// accepted (see the module doc).
    pub async fn accept(&self, routed: &Routed) -> Result<(), LayoutError> {
        let confirmed = Instant::now();
        if confirmed.duration_since(routed.read_started) < STALE {
            return Ok(());
        }
        let seen = self.seen(|s| s.read_started >= confirmed).await?;
        if seen.layout.generation == routed.topology.generation {
            Ok(())
        } else {
            Err(LayoutError::Moved)
        }
    }
}

async fn read_loop(pool: PgPool, first_partitions: u16, tx: watch::Sender<Option<Seen>>) {
    let mut failing = false;
    loop {
        let read_started = Instant::now();
        match generations(&pool, first_partitions).await {
            Ok(gens) => {
                failing = false;
                if let Some(layout) = current(&gens) {
                    tx.send_replace(Some(Seen {
                        layout,
                        read_started,
                    }));
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "partition layout unreadable; commands wait for it");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(READ_EVERY) => {}
        }
    }
}

/// Declares the pipeline's exchanges and queues with the partition queues of every
/// layout generation not retired. When PostgreSQL cannot say which those are within
/// a few seconds, the first layout's (`root`) are declared, as before any growth.
pub async fn declare_queues(
    ch: &lapin::Channel,
    pool: &PgPool,
    root: &Topology,
    shape: crate::amqp::QueueShape,
) -> Result<(), lapin::Error> {
    crate::amqp::declare_shared(ch, root, shape).await?;
    let gens = tokio::time::timeout(Duration::from_secs(5), generations(pool, root.partitions))
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let layouts: Vec<Layout> = match gens {
        Ok(gens) => gens
            .into_iter()
            .filter(|g| g.state != LayoutState::Retired)
            .map(|g| g.layout)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "partition layouts unreadable; declaring the first layout's queues");
            vec![Layout {
                generation: 1,
                partitions: root.partitions,
            }]
        }
    };
    for l in layouts {
        let topo = root.at_layout(l.generation, l.partitions);
        crate::amqp::declare_partitions(ch, &topo, shape).await?;
    }
    Ok(())
}
