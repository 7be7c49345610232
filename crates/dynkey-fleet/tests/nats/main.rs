//! Fleet tests against real nats-servers started on loopback ports with
//! temporary stores (2.15 for the suite, Debian's 2.9.10 for bucket
//! creation and one apply-converge round), dynkeyctl and dynkeyd run as
//! child processes.

mod instances;
mod operator;
mod permissions;
mod support;
mod tls;
mod watch;
