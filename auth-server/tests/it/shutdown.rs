//! Graceful shutdown: readiness turns 503, in-flight requests finish, new
//! connections are refused.

use std::time::Duration;

use crate::common::{start, Client};
use clw_auth::config::Argon2Config;
use clw_auth::state::Phase;
use clw_auth::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_during_shutdown() {
    let mut cfg = Config::for_tests();
    cfg.users.count = 2;
    // A costly hash makes the login slow enough to be in flight at SIGTERM.
    cfg.users.argon2 = Argon2Config {
        memory_kib: 64 * 1024,
        iterations: 4,
        parallelism: 1,
    };
    let server = start(cfg).await;
    let addr = server.addr();
    let state = server.state().clone();
    assert_eq!(state.phase(), Phase::Serving);

    let in_flight = tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        c.login("user-1", None).await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stop = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        state.phase(),
        Phase::Draining,
        "readiness is withdrawn first"
    );

    let reply = in_flight.await.unwrap();
    assert_eq!(
        reply.status, 200,
        "the in-flight login completed: {}",
        reply.text
    );
    stop.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}
