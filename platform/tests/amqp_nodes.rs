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
