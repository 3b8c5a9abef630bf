//! The emitters through the `mqplan` binary: ScaledObjects of apps that share a limit, and
//! the MQSC comments for limits MQSC cannot set.

use crate::plan::{mqplan, stderr, stdout, temp};

/// Two TIBCO apps of 2 fixed instances and one of 1..10, one channel instance each, on a
/// channel with MAXINST 100 (MaxChannels 1000).
const SHARED_CHANNEL: &str = "\
[queue_manager]
name = \"QM1\"
max_channels = 1000

[[queue_manager.channel]]
name = \"APP.SVRCONN\"
max_inst = 100

[[app]]
name = \"alpha\"
profile = \"tibco\"
channel = \"APP.SVRCONN\"
instances = 2

[[app.workload]]
queue = \"A.IN\"
kind = \"process\"

[[app]]
name = \"beta\"
profile = \"tibco\"
channel = \"APP.SVRCONN\"
instances = 2

[[app.workload]]
queue = \"B.IN\"
kind = \"process\"

[[app]]
name = \"gamma\"
profile = \"tibco\"
channel = \"APP.SVRCONN\"
instances = { min = 1, max = 10 }

[[app.workload]]
queue = \"C.IN\"
kind = \"process\"
";

/// `emit keda` for `app`: the YAML, and its maxReplicaCount.
fn keda(model: &std::path::Path, app: &str, headroom: &str) -> (String, u64) {
    let out = mqplan(&[
        "emit",
        "keda",
        model.to_str().expect("utf-8"),
        "--app",
        app,
        "--headroom",
        headroom,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let yaml = stdout(&out);
    let max = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("maxReplicaCount: "))
        .expect("maxReplicaCount")
        .parse()
        .expect("a count");
    (yaml, max)
}

#[test]
fn keda_caps_of_apps_sharing_a_channel_fit_its_maxinst_together() {
    let model = temp("keda-shared.toml", SHARED_CHANNEL);
    for (headroom, room) in [("0", 100), ("20", 80)] {
        let caps: Vec<u64> = ["alpha", "beta", "gamma"]
            .iter()
            .map(|app| keda(&model, app, headroom).1)
            .collect();
        // One channel instance per instance: every app at its cap at once must fit MAXINST
        // with the headroom asked for.
        assert!(caps.iter().sum::<u64>() <= room, "--headroom {headroom}: {caps:?}");
        // The fixed-count apps still get room to grow, and the range app its whole range.
        assert!(caps[0] > 2 && caps[1] > 2, "--headroom {headroom}: {caps:?}");
        assert_eq!(caps[2], 10, "--headroom {headroom}");
    }
    let (yaml, _) = keda(&model, "alpha", "20");
    assert!(
        yaml.contains("# MAXINST on channel APP.SVRCONN also grows with the fixed-count app beta"),
        "{yaml}"
    );
    assert!(
        yaml.contains("the 20% headroom covers a surge of up to 25% over it"),
        "{yaml}"
    );
}
