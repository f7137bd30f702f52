//! A client given a list of broker nodes connects to one that answers, whichever node
//! the rotation starts at: a dead node in the list costs one refused attempt, not the
//! connection. Needs the RabbitMQ of `AMQP_URL` (scripts/test.sh starts it).

/// A node that refuses every connection (nothing listens on port 1).
const DEAD: &str = "amqp://guest:guest@127.0.0.1:1/%2f";

fn live() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

#[tokio::test]
async fn with_a_dead_node_in_the_list_every_connection_reaches_the_live_one() {
    let urls = format!("{DEAD},{},{DEAD}", live());
    // Three nodes: three connections start the rotation at each of them once.
    for i in 0..3 {
        let conn = platform::amqp::connect(&urls, "nodes-test")
            .await
            .unwrap_or_else(|e| panic!("connection {i} failed over a live node: {e}"));
        assert!(conn.status().connected());
        let ch = conn
            .create_channel()
            .await
            .expect("a channel on the live node");
        drop(ch.close(200, "done".into()).await);
        drop(conn.close(200, "done".into()).await);
    }
}

#[tokio::test]
async fn with_only_dead_nodes_the_connection_fails() {
    let urls = format!("{DEAD}, amqp://guest:guest@127.0.0.1:2/%2f");
    assert!(platform::amqp::connect(&urls, "nodes-test").await.is_err());
}

/// A node that accepts TCP connections and never says a word (a node still booting,
/// or rejoining its cluster): its address, and the task holding its connections.
async fn silent_node() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), task)
}

#[tokio::test]
async fn a_publisher_reaches_the_live_node_behind_silent_ones_on_its_first_attempt() {
    use platform::amqp::{ConfirmedPublisher, json_properties};
    use std::time::{Duration, Instant};
    let (a, ta) = silent_node().await;
    let (b, tb) = silent_node().await;
    let (c, tc) = silent_node().await;
    let urls = format!("{a},{b},{c},{}", live());
    // Four fresh publishers start the rotation at four places: three of them at a
    // silent node. Each must publish on its first attempt, having waited out at
    // most the silent nodes in its way (not given up on the first one).
    for i in 0..4 {
        let publisher = ConfirmedPublisher::new(&urls, "nodes-test", 1, Duration::from_secs(5));
        let started = Instant::now();
        publisher
            .publish(
                "",
                "nodes-test-routed-nowhere",
                b"{}",
                json_properties(&format!("m{i}"), Default::default()),
            )
            .await
            .unwrap_or_else(|e| panic!("publisher {i} did not reach the live node: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "publisher {i} took {:?}",
            started.elapsed()
        );
    }
    for t in [ta, tb, tc] {
        t.abort();
    }
}

/// A forwarder to the live broker that counts the connections it was asked for.
async fn counting_proxy() -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let live = live();
    let target = live
        .split_once('@')
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("AMQP_URL names host:port")
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let opened = std::sync::Arc::new(AtomicUsize::new(0));
    let count = opened.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    drop(tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await);
                }
            });
        }
    });
    let via = live.replacen(
        live.split_once('@')
            .map_or("", |(_, r)| r.split('/').next().unwrap_or("")),
        &format!("127.0.0.1:{port}"),
        1,
    );
    (via, opened, task)
}

/// A publisher whose publishes are nacked opens new channels (RabbitMQ 3.10 nacks
/// every publish of a channel whose quorum-queue client started from a leader that
/// is gone, for as long as that node is down; new channels start from the new
/// leader), but at most once a second however many nacks come.
#[tokio::test]
async fn a_nacked_publisher_opens_new_channels_at_most_once_a_second() {
    use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
    use lapin::types::{AMQPValue, FieldTable};
    use platform::amqp::{ConfirmedPublisher, PublishError, json_properties};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    // A queue that refuses every message with a nack (full at length 0).
    let queue = format!("nack-test-{}", std::process::id());
    let conn = platform::amqp::connect(&live(), "nodes-test")
        .await
        .expect("broker");
    let ch = conn.create_channel().await.expect("channel");
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(0));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        args,
    )
    .await
    .expect("declare the full queue");

    let (via, opened, proxy) = counting_proxy().await;
    let publisher = ConfirmedPublisher::new(&via, "nodes-test", 2, Duration::from_secs(5));
    let started = Instant::now();
    let mut nacks = 0;
    while opened.load(Ordering::SeqCst) < 2 && started.elapsed() < Duration::from_secs(5) {
        let sent = publisher
            .publish(
                "",
                &queue,
                b"{}",
                json_properties(&format!("n{nacks}"), Default::default()),
            )
            .await;
        assert!(matches!(sent, Err(PublishError::Nacked)), "{sent:?}");
        nacks += 1;
    }
    let took = started.elapsed();
    assert_eq!(
        opened.load(Ordering::SeqCst),
        2,
        "a second connection after {nacks} nacks"
    );
    assert!(
        took >= Duration::from_secs(1) && nacks > 5,
        "replaced after {took:?} and {nacks} nacks: not at most once a second"
    );
    // And the new link works (it is nacked again, on new channels).
    let sent = publisher
        .publish(
            "",
            &queue,
            b"{}",
            json_properties("last", Default::default()),
        )
        .await;
    assert!(matches!(sent, Err(PublishError::Nacked)), "{sent:?}");
    assert_eq!(opened.load(Ordering::SeqCst), 2);
    drop(
        ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await,
    );
    proxy.abort();
}
