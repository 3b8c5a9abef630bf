//! What the planner costs on a large fleet.
//!
//! - `check_200_apps`: parse, plan and report a 200-app model (all six profiles, four
//!   channels, address groups and per-instance addresses), as `mqplan check` does.
//! - `sweep_10000_instances`: one app of that model scaled from 1 to 10,000 instances, every
//!   check at every count, the rest of the fleet fixed. Target: under 50 ms.
//!
//! Numbers and the command are in BENCHMARKS.md.

use std::fmt::Write as _;

use divan::{Bencher, black_box};
use mqpilot::plan::{self, Plan, model::Model, sweep};

fn main() {
    divan::main();
}

/// A fleet of `apps` apps cycling through the profiles, channels and addresses.
fn fleet(apps: usize) -> String {
    let mut text = String::from(
        "[queue_manager]\nname = \"QM1\"\nmax_handles = 256\nmax_channels = 5000\nmax_connections = 200000\n",
    );
    for c in 0..4 {
        let _ = write!(
            text,
            "[[queue_manager.channel]]\nname = \"CH{c}.SVRCONN\"\nmax_inst = 2000\nmax_instc = 200\nsharecnv = {}\n",
            [10, 1, 0, 5][c]
        );
    }
    for a in 0..apps {
        let address = if a % 3 == 0 {
            format!("nat-{}", a % 7)
        } else {
            "per-instance".into()
        };
        let _ = write!(
            text,
            "[[app]]\nname = \"app{a}\"\nchannel = \"CH{}.SVRCONN\"\ninstances = {}\nclient_address = \"{address}\"\n",
            a % 4,
            1 + a % 9
        );
        let body = match a % 6 {
            0 => {
                "profile = \"logicapps-builtin\"\nconnections = 10\n[[app.workload]]\nqueue = \"Q\"\nkind = \"browse-lock-trigger\"\nbatch = 20\nconcurrency = 10\n"
            }
            1 => {
                "profile = \"mqpilot\"\nconnections = 4\n[[app.workload]]\nqueue = \"Q\"\nkind = \"poll\"\nbatch = 50\nconcurrency = 4\nbackout_queue = \"Q.BO\"\n"
            }
            2 => {
                "profile = \"jms\"\n[[app.workload]]\nqueue = \"Q\"\nkind = \"listener\"\nconcurrency = 5\nqueues = [\"R\"]\n"
            }
            3 => {
                "profile = \"ace\"\n[[app.workload]]\nqueue = \"Q\"\nkind = \"flow\"\nconcurrency = 3\nqueues = [\"R\", \"S\"]\n"
            }
            4 => {
                "profile = \"tibco\"\n[[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\nactivities = 2\nconcurrency = 3\n"
            }
            _ => "profile = \"custom\"\nconnections = 3\nhandles_per_connection = 4\nuncommitted = 10\n",
        };
        text.push_str(body);
    }
    text
}

#[divan::bench]
fn check_200_apps(bencher: Bencher) {
    let text = fleet(200);
    bencher.bench(|| {
        let report = plan::check_text(black_box(&text), "fleet.toml", 20.0).expect("valid");
        black_box(report.status)
    });
}

#[divan::bench]
fn sweep_10000_instances(bencher: Bencher) {
    let text = fleet(200);
    let plan = Plan::new(Model::from_toml(&text, "fleet.toml".as_ref()).expect("valid"));
    bencher.bench(|| {
        let s = sweep::sweep(black_box(&plan), 1, 1, 10_000, 20.0);
        black_box(s.rows.len())
    });
}
