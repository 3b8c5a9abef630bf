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

/// A TIBCO app of 6 instances x 15 connections (90) against a connection limit of 50.
const CONNECTION_LIMIT: &str = "\
[queue_manager]
name = \"QM1\"
max_connections = 50

[[queue_manager.channel]]
name = \"BW.SVRCONN\"

[[app]]
name = \"bw\"
profile = \"tibco\"
channel = \"BW.SVRCONN\"
instances = 6

[[app.workload]]
queue = \"BW.IN\"
kind = \"process\"
activities = 3
concurrency = 5
";

#[test]
fn emit_mqsc_says_when_the_connection_limit_fails_and_that_mqsc_cannot_raise_it() {
    let model = temp("connection-limit.toml", CONNECTION_LIMIT);
    let out = mqplan(&["emit", "mqsc", model.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mqsc = stdout(&out);
    let line = comment(&mqsc, "* max_connections:");
    let line = line.as_str();
    assert!(line.contains("90 connections") && line.contains("50"), "{line}");
    assert!(line.contains("fails with 2025"), "{line}");
    assert!(line.contains("not an MQSC attribute"), "{line}");

    let report = mqpilot::plan::check_text(CONNECTION_LIMIT, "t.toml", 20.0).expect("valid");
    let advice = report
        .recommendations
        .iter()
        .find(|r| r.limit == Some(mqpilot::plan::math::Limit::MaxConnections))
        .expect("a recommendation for the connection limit");
    assert_eq!(advice.recommended, Some(113));
    assert!(advice.text.contains("not an MQSC attribute"), "{}", advice.text);
}

#[test]
fn max_channels_past_65535_is_recommended_with_a_caveat() {
    // 70,000 instances of one channel instance each.
    let model = CONNECTION_LIMIT
        .replace("max_connections = 50", "max_channels = 100")
        .replace("instances = 6", "instances = 70000")
        .replace("activities = 3\nconcurrency = 5\n", "");
    let report = mqpilot::plan::check_text(&model, "t.toml", 20.0).expect("valid");
    let advice = report
        .recommendations
        .iter()
        .find(|r| r.limit == Some(mqpilot::plan::math::Limit::MaxChannels))
        .expect("a MaxChannels recommendation");
    assert_eq!(advice.recommended, Some(87_500));
    assert!(advice.text.contains("65535"), "{}", advice.text);
    let small = model.replace("instances = 70000", "instances = 700");
    let report = mqpilot::plan::check_text(&small, "t.toml", 20.0).expect("valid");
    assert!(report.recommendations.iter().all(|r| !r.text.contains("65535")));
    let file = temp("many-channels.toml", &model);
    let mqsc = stdout(&mqplan(&["emit", "mqsc", file.to_str().expect("utf-8")]));
    assert!(mqsc.contains("MaxChannels=87500"), "{mqsc}");
    assert!(mqsc.contains("65535"), "{mqsc}");
}

/// The MQSC comment that starts with `start`, its continuation lines (`*   ...`) joined on.
fn comment(mqsc: &str, start: &str) -> String {
    let mut lines = mqsc.lines().skip_while(|l| !l.starts_with(start));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no comment starting {start:?}:\n{mqsc}"));
    lines
        .map_while(|l| l.strip_prefix("*   "))
        .fold(first.to_owned(), |joined, next| format!("{joined} {next}"))
}

/// `n` custom apps of 1 connection on channel C of MaxChannels `max_channels`, each named
/// `name(i)`; `extra` goes into each app.
fn custom_apps(n: usize, name: impl Fn(usize) -> String, extra: &str) -> String {
    let apps: String = (0..n)
        .map(|i| {
            format!(
                "[[app]]\nname = \"{}\"\nprofile = \"custom\"\nchannel = \"C\"\ninstances = 2\nconnections = 1\n\
                 handles_per_connection = 1\nuncommitted = 1\n{extra}\n",
                name(i)
            )
        })
        .collect();
    format!("[queue_manager]\nname = \"QM1\"\nmax_channels = 5000\n[[queue_manager.channel]]\nname = \"C\"\n{apps}")
}

#[test]
fn regression_mqsc_comment_lines_stay_short_for_many_apps() {
    // 80 apps with 28-character names on one channel: the SHARECNV list alone is over 2,000
    // characters, past the 2,048 characters IBM MQ reads on one MQSC line.
    let model = temp(
        "many-apps.toml",
        &custom_apps(80, |i| format!("application-with-long-name{i:02}"), ""),
    );
    let out = mqplan(&["emit", "mqsc", model.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mqsc = stdout(&out);
    for line in mqsc.lines() {
        assert!(line.starts_with("* ") || line.starts_with("ALTER "), "{line}");
        if line.starts_with('*') {
            assert!(line.chars().count() <= 100, "{} characters: {line}", line.len());
        }
    }
    // Nothing is lost in the wrapping: every app's effective SHARECNV is listed.
    let channel = comment(&mqsc, "* C: ");
    for i in 0..80 {
        assert!(
            channel.contains(&format!("application-with-long-name{i:02} 10")),
            "{channel}"
        );
    }
}

#[test]
fn regression_mqsc_comments_count_one_in_the_singular_and_saturated_counts_as_words() {
    // One connection with one handle and one uncommitted message; two instances of one
    // channel instance each.
    let model = temp("one-app.toml", &custom_apps(1, |_| "solo".into(), ""));
    let mqsc = stdout(&mqplan(&["emit", "mqsc", model.to_str().expect("utf-8")]));
    let qmgr = comment(&mqsc, "* MAXHANDS:");
    assert!(qmgr.contains("at most 1 handle on one connection"), "{qmgr}");
    assert!(qmgr.contains("at most 1 message in one unit of work"), "{qmgr}");
    let channel = comment(&mqsc, "* C: ");
    assert!(channel.contains("at most 1 from one client address"), "{channel}");
    // Twenty apps of 999,999,999 x 999,999,999 channel instances behind one address: more
    // than a u64 holds, so the count is a saturated "more than 999999999".
    let vast = custom_apps(20, |i| format!("vast{i}"), "client_address = \"nat\"\nsharecnv = 0")
        .replace("instances = 2", "instances = 999999999")
        .replace("connections = 1\n", "connections = 999999999\n");
    let model = temp("saturated.toml", &vast);
    let out = mqplan(&["emit", "mqsc", model.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let channel = comment(&stdout(&out), "* C: ");
    assert!(
        channel.contains("more than 999999999 from one client address"),
        "{channel}"
    );
    assert!(!channel.contains("at most more than"), "{channel}");
}

/// alpha (custom, 2 instances on C) can get a ScaledObject; beta (logicapps-builtin, 2
/// instances on D) only sends, so it gets none and never scales past its count.
const ONE_SCALES: &str = "\
[queue_manager]
name = \"QM1\"
max_channels = 100

[[queue_manager.channel]]
name = \"C\"

[[queue_manager.channel]]
name = \"D\"

[[app]]
name = \"alpha\"
profile = \"custom\"
channel = \"C\"
instances = 2
connections = 1
handles_per_connection = 1
uncommitted = 1

[[app.workload]]
queue = \"A.IN\"
kind = \"get\"

[[app]]
name = \"beta\"
profile = \"logicapps-builtin\"
channel = \"D\"
instances = 2
connections = 1

[[app.workload]]
queue = \"B.OUT\"
kind = \"send\"
";

#[test]
fn regression_keda_shares_room_only_with_apps_that_get_a_scaled_object() {
    let model = temp("one-scales.toml", ONE_SCALES);
    let beta = mqplan(&["emit", "keda", model.to_str().expect("utf-8"), "--app", "beta"]);
    assert_eq!(beta.status.code(), Some(2), "{}", stdout(&beta));
    assert!(
        stderr(&beta).contains("takes messages off no queue"),
        "{}",
        stderr(&beta)
    );
    // MaxChannels 100 keeps 20% up to 80 channel instances; beta stays at its 2.
    let (yaml, max) = keda(&model, "alpha", "20");
    assert_eq!(max, 78, "{yaml}");
    assert!(!yaml.contains("beta"), "{yaml}");
}
