//! The planner through its library entry points and the `mqplan` binary: exit codes, errors,
//! emitters, sweeps and charts.

use std::path::PathBuf;
use std::process::{Command, Output};

use mqpilot::plan::{self, Plan, Status, chart, model::Model, sweep};

pub(crate) fn mqplan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqplan"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run mqplan")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mqplan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

const SMALL: &str = "\
[queue_manager]
name = \"QM1\"
max_handles = 50
max_channels = 10

[[queue_manager.channel]]
name = \"APP.SVRCONN\"
max_inst = 8
sharecnv = 10

[[app]]
name = \"orders\"
profile = \"logicapps-builtin\"
channel = \"APP.SVRCONN\"
instances = 3
connections = 10

[[app.workload]]
queue = \"ORDERS.IN\"
kind = \"browse-lock-trigger\"
batch = 20
concurrency = 10
";

#[test]
fn check_exit_codes_follow_the_worst_status() {
    let ok = mqplan(&["check", "models/logicapps-standard.toml"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("status: ok"));
    let at_risk = mqplan(&["check", "models/mixed-fleet.toml"]);
    assert_eq!(at_risk.status.code(), Some(1));
    let fails = mqplan(&["check", "models/ace.toml", "--format", "json"]);
    assert_eq!(fails.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_str(&stdout(&fails)).expect("json");
    assert_eq!(json["status"], "fails");
}

#[test]
fn check_validate_shows_the_fake_agreeing_with_the_report() {
    let ok = mqplan(&["check", "models/logicapps-standard.toml", "--validate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let text = stdout(&ok);
    let (report, observed) = text
        .split_once("mqplan validate: the model on the embedded fake queue manager")
        .expect("the validation follows the report");
    assert!(report.contains("peak handles per connection: 21"), "{report}");
    assert!(
        observed.contains("orders: peak handles per connection: predicted 21, observed 21"),
        "{observed}"
    );
    assert!(
        observed.contains("orders: connections: predicted 120, observed 120"),
        "{observed}"
    );
    assert!(observed.contains("result: observed matches predicted"), "{observed}");

    // A failing model keeps exit 2 when the fake returns the predicted reason code.
    let fails = mqplan(&["check", "models/ace.toml", "--validate", "--format", "json"]);
    assert_eq!(fails.status.code(), Some(2), "{}", stderr(&fails));
    let json: serde_json::Value = serde_json::from_str(&stdout(&fails)).expect("json");
    assert_eq!(json["status"], "fails");
    let validation = &json["validation"];
    assert_eq!(validation["matches"], true, "{validation}");
    assert_eq!(validation["predicted_reason_codes"], serde_json::json!([2537]));
    assert!(
        validation["observed_reason_codes"]["2537"].as_u64() > Some(0),
        "{validation}"
    );

    let markdown = stdout(&mqplan(&[
        "check",
        "models/mqpilot.toml",
        "--validate",
        "--format",
        "markdown",
    ]));
    assert!(
        markdown.contains("## Observed on the embedded fake queue manager"),
        "{markdown}"
    );
    assert!(markdown.contains("result: observed matches predicted"), "{markdown}");
    let plain = stdout(&mqplan(&["check", "models/mqpilot.toml", "--format", "json"]));
    let plain: serde_json::Value = serde_json::from_str(&plain).expect("json");
    assert!(plain.get("validation").is_none(), "only with --validate");
}

#[test]
fn json_report_keeps_its_documented_fields() {
    let report = plan::check_text(SMALL, "small.toml", 20.0).expect("valid");
    let json = serde_json::to_value(&report).expect("json");
    for key in [
        "schema_version",
        "queue_manager",
        "apps",
        "checks",
        "recommendations",
        "status",
        "total_open_handles",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let app = &json["apps"][0];
    for key in [
        "name",
        "profile",
        "instances",
        "connections_per_instance",
        "connections",
        "channel_instances_per_instance",
        "channel_instances",
        "peak_handles_per_connection",
        "uncommitted_per_unit_of_work",
        "first_failure",
        "max_safe_instances",
        "assumptions",
    ] {
        assert!(app.get(key).is_some(), "apps[0] lacks {key}");
    }
    for key in [
        "limit",
        "scope",
        "required",
        "configured",
        "headroom_pct",
        "status",
        "reason_code",
    ] {
        assert!(json["checks"][0].get(key).is_some(), "checks[0] lacks {key}");
    }
    // 20 locks + 0 transient = 20 of 50 handles: ok; 3 channel instances of MAXINST 8: ok;
    // scaling alone, the 9th instance needs a 9th channel instance: 2537.
    assert_eq!(app["peak_handles_per_connection"], 20);
    assert_eq!(app["first_failure"]["instances"], 9);
    assert_eq!(app["first_failure"]["limit"], "MAXINST");
    assert_eq!(app["first_failure"]["reason_code"], 2537);
    assert_eq!(app["max_safe_instances"], 8);
}

#[test]
fn json_objects_check_like_toml_text() {
    let value = serde_json::to_value(toml::from_str::<toml::Value>(SMALL).expect("toml")).expect("json");
    let from_json = plan::check_value(&value, "small.toml", 20.0).expect("valid");
    let from_text = plan::check_text(SMALL, "small.toml", 20.0).expect("valid");
    assert_eq!(
        serde_json::to_value(&from_json).expect("json"),
        serde_json::to_value(&from_text).expect("json")
    );
}

#[test]
fn an_invalid_model_exits_65_naming_file_line_and_field() {
    let path = temp("bad.toml", &SMALL.replace("batch = 20", "batch = -4"));
    let out = mqplan(&["check", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(65));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml:21:1: app[0].workload[0].batch: must be at least 1, not -4"),
        "{err}"
    );
    let path = temp(
        "unknown.toml",
        &SMALL.replace("sharecnv = 10", "sharecnv = 10\nshare_cnv = 3"),
    );
    let err = stderr(&mqplan(&["check", path.to_str().expect("utf-8")]));
    assert!(
        err.contains("unknown.toml:10:1: queue_manager.channel[0].share_cnv: unknown field"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    assert_eq!(mqplan(&["check"]).status.code(), Some(64));
    assert_eq!(mqplan(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(
        mqplan(&["check", "models/ace.toml", "--headroom", "120"]).status.code(),
        Some(64)
    );
    // A negative headroom is a value out of range, not an unknown flag.
    let negative = mqplan(&["check", "models/ace.toml", "--headroom", "-5"]);
    assert_eq!(negative.status.code(), Some(64));
    let err = String::from_utf8_lossy(&negative.stderr);
    assert!(err.contains("--headroom: must be at least 0"), "{err}");
    assert_eq!(
        mqplan(&["sweep", "models/ace.toml", "--app", "nobody"]).status.code(),
        Some(64)
    );
    // A timeout past any clock's range is refused by its flag, before any instance starts.
    let huge = mqplan(&[
        "validate",
        "models/ace.toml",
        "--fake-qm",
        "--ready-timeout",
        "18446744073709551615",
    ]);
    assert_eq!(huge.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&huge.stderr).contains("--ready-timeout"));
    let help = mqplan(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("check"));
    assert_eq!(mqplan(&["--version"]).status.code(), Some(0));
}

#[test]
fn emit_mqsc_raises_what_the_plan_needs_and_says_why() {
    let out = mqplan(&["emit", "mqsc", "models/ace.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mqsc = stdout(&out);
    // 21 instances from the ace-nodes address; 21 / 0.8 -> 27.
    assert!(
        mqsc.contains("ALTER CHANNEL('ACE.SVRCONN') CHLTYPE(SVRCONN) MAXINST(60) MAXINSTC(27) SHARECNV(0)"),
        "{mqsc}"
    );
    assert!(mqsc.contains("ALTER QMGR MAXHANDS(256)"), "{mqsc}");
    assert!(mqsc.contains("MaxChannels=100"), "{mqsc}");
    assert!(mqsc.lines().filter(|l| l.starts_with("ALTER")).count() == 2, "{mqsc}");
}

#[test]
fn emit_keda_caps_replicas_where_the_headroom_ends() {
    // 100 instances of one channel instance each against MaxChannels 100.
    let max = |headroom: &str| {
        let out = mqplan(&[
            "emit",
            "keda",
            "models/logicapps-standard.toml",
            "--app",
            "orders",
            "--headroom",
            headroom,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let yaml = stdout(&out);
        assert!(yaml.contains("queueName: \"ORDERS.IN\""), "{yaml}");
        assert!(yaml.contains("type: ibmmq"), "{yaml}");
        yaml.lines()
            .find_map(|l| l.trim().strip_prefix("maxReplicaCount: "))
            .expect("maxReplicaCount")
            .to_owned()
    };
    assert_eq!(max("0"), "100");
    assert_eq!(max("20"), "80");
    assert_eq!(max("50"), "50");
}

#[test]
fn emit_keda_refuses_an_app_that_fails_at_its_minimum_and_exits_2() {
    let model = temp(
        "keda-fails.toml",
        &SMALL
            .replace("instances = 3", "instances = { min = 2, max = 12 }")
            .replace("batch = 20", "batch = 300"),
    );
    let out = mqplan(&["emit", "keda", model.to_str().expect("utf-8"), "--app", "orders"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("app orders: 1 instance already fails MAXHANDS (reason code 2017)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn hostile_counts_and_names_are_invalid_models_not_crashes() {
    for (name, text, field) in [
        (
            "huge.toml",
            SMALL.replace("instances = 3", "instances = 9223372036854775807"),
            "app[0].instances: must be at most 999999999",
        ),
        (
            "inject.toml",
            SMALL.replace("name = \"QM1\"", "name = \"QM1\\nDELETE QLOCAL(ORDERS.IN)\""),
            "queue_manager.name: queue manager name",
        ),
        (
            "unused.toml",
            SMALL
                .replace("\"logicapps-builtin\"", "\"jms\"")
                .replace("browse-lock-trigger", "listener"),
            "app[0].connections: the jms profile does not use `connections`",
        ),
    ] {
        let model = temp(name, &text);
        for command in [&["check"][..], &["emit", "mqsc"], &["sweep", "--app", "orders"]] {
            let mut args = command.to_vec();
            args.insert(if command[0] == "emit" { 2 } else { 1 }, model.to_str().expect("utf-8"));
            let out = mqplan(&args);
            assert_eq!(out.status.code(), Some(65), "{args:?}: {}", stderr(&out));
            assert!(stderr(&out).contains(field), "{args:?}: {}", stderr(&out));
        }
    }
}

#[test]
fn a_sweep_too_wide_is_a_usage_error() {
    let out = mqplan(&[
        "sweep",
        "models/mixed-fleet.toml",
        "--app",
        "orders",
        "--instances",
        "1..100000000",
    ]);
    assert_eq!(out.status.code(), Some(64), "{}", stdout(&out));
    assert!(stderr(&out).contains("--instances"), "{}", stderr(&out));
    assert!(stderr(&out).contains("at most 100000 rows"), "{}", stderr(&out));
}

#[test]
fn a_fleet_too_large_for_the_fake_is_refused_before_it_runs() {
    let model = temp("vast.toml", &SMALL.replace("instances = 3", "instances = 500000"));
    let out = mqplan(&["validate", model.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(64), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("too large to run on the fake queue manager"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_sweep_marks_the_first_failure_where_the_report_does() {
    let model = Model::from_toml(SMALL, "small.toml".as_ref()).expect("valid");
    let plan = Plan::new(model);
    let s = sweep::sweep(&plan, 0, 1, 12, 20.0);
    assert_eq!(s.rows.len(), 12);
    let first_failing = s.rows.iter().find(|r| r.status == Status::Fails).map(|r| r.instances);
    assert_eq!(first_failing, Some(9));
    assert_eq!(s.first_failure.map(|f| f.instances), Some(9));
    assert_eq!(s.rows[7].channel_total, 8);
}

#[test]
fn charts_render_as_png_and_svg_with_axis_labels() {
    let model = Model::from_toml(SMALL, "small.toml".as_ref()).expect("valid");
    let plan = Plan::new(model);
    let s = sweep::sweep(&plan, 0, 1, 20, 20.0);
    let svg = chart::render_svg(&s).expect("svg");
    assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    for label in [
        "instances",
        "channel instances",
        "handles per connection",
        "MAXINST 8",
        "MAXHANDS 50",
    ] {
        assert!(svg.contains(label), "the SVG lacks {label:?}");
    }
    let png = temp("chart.png", "");
    chart::write_chart(&s, &png).expect("png");
    let bytes = std::fs::read(&png).expect("read png");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
    let out = mqplan(&[
        "sweep",
        "models/ace.toml",
        "--app",
        "integration",
        "--chart",
        "/tmp/x.gif",
    ]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

#[test]
fn another_apps_maxhands_is_not_this_apps_first_failure() {
    let text = format!(
        "{SMALL}\n[[app]]\nname = \"bw\"\nprofile = \"tibco\"\nchannel = \"APP.SVRCONN\"\ninstances = 1\n\
         [[app.workload]]\nqueue = \"BW.IN\"\nkind = \"process\"\n"
    )
    .replace("max_handles = 50", "max_handles = 10")
    .replace("max_inst = 8", "max_inst = 100")
    .replace("max_channels = 10", "max_channels = 1000");
    let report = plan::check_text(&text, "t.toml", 20.0).expect("valid");
    assert_eq!(report.status, Status::Fails);
    let orders = &report.apps[0];
    assert_eq!(
        orders.first_failure.map(|f| (f.instances, f.reason_code)),
        Some((1, 2017))
    );
    assert_eq!(orders.max_safe_instances, 0);
    let bw = &report.apps[1];
    // bw's own limits: 3 instances of orders take 3 of MAXINST 100, so its 98th instance fails.
    assert_eq!(bw.first_failure.map(|f| (f.instances, f.reason_code)), Some((98, 2537)));
    assert_eq!(bw.max_safe_instances, 97);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, failure_persistence: None, ..Default::default() })]
    /// The closed-form first failure is the first failing row of a sweep, for every app.
    #[test]
    fn first_failure_is_where_the_sweep_first_fails(model in crate::plan_validate::model_strategy()) {
        let plan = Plan::new(Model::from_json(&model, "generated".as_ref()).expect("valid"));
        let report = plan.report("generated", 20.0);
        for (a, app) in report.apps.iter().enumerate() {
            let s = sweep::sweep(&plan, a, 1, 300, 20.0);
            let swept = s.rows.iter().find(|r| r.status == Status::Fails).map(|r| r.instances);
            let solved = app.first_failure.map(|f| f.instances).filter(|&i| i <= 300);
            proptest::prop_assert_eq!(swept, solved, "app {}", app.name);
        }
    }
}

/// A tibco app of `instances` fixed instances, one channel instance each, against MaxChannels
/// `max_channels`.
fn large_fleet(max_channels: u64, instances: u64) -> String {
    format!(
        "[queue_manager]\nname = \"QM1\"\nmax_channels = {max_channels}\n[[queue_manager.channel]]\nname = \"C\"\n\
         sharecnv = 10\n[[app]]\nname = \"t\"\nprofile = \"tibco\"\nchannel = \"C\"\ninstances = {instances}\n\
         [[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\n"
    )
}

#[test]
fn regression_fixed_counts_past_100000_fail_where_the_limit_ends() {
    let model = temp("big.toml", &large_fleet(150_000, 200_000));
    let out = mqplan(&["check", model.to_str().expect("utf-8"), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let app = &json["apps"][0];
    assert_eq!(app["first_failure"]["instances"], 150_001, "{app}");
    assert_eq!(app["first_failure"]["limit"], "MaxChannels", "{app}");
    assert_eq!(app["max_safe_instances"], 150_000, "{app}");
    let text = stdout(&mqplan(&["check", model.to_str().expect("utf-8")]));
    assert!(
        text.contains("first failure: 2537 (MaxChannels) at 150001 instances; max safe instances: 150000"),
        "{text}"
    );
    let out = mqplan(&["emit", "keda", model.to_str().expect("utf-8"), "--app", "t"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("150001 instances already fail MaxChannels"),
        "{}",
        stderr(&out)
    );

    // Nothing fails: check, its first failure and KEDA agree that 200,000 instances are safe.
    let model = temp("big-ok.toml", &large_fleet(999_999_999, 200_000));
    let out = mqplan(&["check", model.to_str().expect("utf-8"), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(json["apps"][0]["max_safe_instances"], 999_999_999);
    let out = mqplan(&["emit", "keda", model.to_str().expect("utf-8"), "--app", "t"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("maxReplicaCount: 799999999\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn regression_a_bad_chart_extension_is_refused_before_the_sweep_prints() {
    let out = mqplan(&[
        "sweep",
        "models/mixed-fleet.toml",
        "--app",
        "orders",
        "--instances",
        "1..5",
        "--chart",
        "o.jpg",
    ]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).contains("--chart"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("o.jpg must end in .png or .svg"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn regression_a_chart_that_cannot_be_written_leaves_the_old_one_whole() {
    let dir = std::env::temp_dir().join(format!("mqplan-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for name in ["part.svg", "part.png"] {
        let chart = dir.join(name);
        std::fs::write(&chart, "the chart before").expect("write");
        // Files of at most 8 KiB, and EFBIG instead of SIGXFSZ past that: both charts are larger.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f 8; exec '{}' sweep models/mixed-fleet.toml --app orders --instances 1..50 \
                 --chart '{}'",
                env!("CARGO_BIN_EXE_mqplan"),
                chart.display()
            ))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run mqplan under sh");
        assert_eq!(out.status.code(), Some(74), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("cannot write {}: ", chart.display())), "{err}");
        assert!(err.contains("File too large"), "{err}");
        assert_eq!(std::fs::read_to_string(&chart).expect("read"), "the chart before");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        std::fs::remove_file(&chart).expect("remove");
    }
    std::fs::remove_dir(&dir).expect("remove dir");
}

#[test]
fn regression_a_sweep_names_max_active_channels_when_it_is_the_lower() {
    let text = SMALL.replace("max_channels = 10", "max_channels = 100\nmax_active_channels = 50");
    let plan = Plan::new(Model::from_toml(&text, "small.toml".as_ref()).expect("valid"));
    let s = sweep::sweep(&plan, 0, 1, 3, 20.0);
    let table = sweep::render_sweep(&s);
    assert!(
        table.starts_with("mqplan sweep: orders (MAXINST 8, MaxActiveChannels 50, MAXHANDS 50)"),
        "{table}"
    );
    let svg = chart::render_svg(&sweep::sweep(&plan, 0, 1, 30, 20.0)).expect("svg");
    assert!(
        svg.contains("MaxActiveChannels 50") && !svg.contains("MaxChannels 50"),
        "the SVG names MaxChannels"
    );
    let plain = Plan::new(Model::from_toml(SMALL, "small.toml".as_ref()).expect("valid"));
    let table = sweep::render_sweep(&sweep::sweep(&plain, 0, 1, 3, 20.0));
    assert!(
        table.starts_with("mqplan sweep: orders (MAXINST 8, MaxChannels 10, MAXHANDS 50)"),
        "{table}"
    );
}

#[test]
fn regression_one_instance_is_singular_and_saturated_counts_are_words() {
    // MAXHANDS 10 against 20 locked messages: the first instance fails.
    let text = SMALL
        .replace("instances = 3", "instances = 1")
        .replace("max_handles = 50", "max_handles = 10");
    let report = plan::check_text(&text, "small.toml", 20.0).expect("valid");
    let rendered = plan::text::render_text(&report, false);
    assert!(
        rendered.contains("on APP.SVRCONN: 1 instance, client address"),
        "{rendered}"
    );
    assert!(
        rendered.contains("first failure: 2017 (MAXHANDS) at 1 instance;"),
        "{rendered}"
    );
    let plan = Plan::new(Model::from_toml(&text, "small.toml".as_ref()).expect("valid"));
    let table = sweep::render_sweep(&sweep::sweep(&plan, 0, 1, 2, 20.0));
    assert!(
        table.ends_with("first failure: 2017 (MAXHANDS) at 1 instance\n"),
        "{table}"
    );

    // 999,999,999 instances of 999,999,999 x 999,999,999 connections: past what a u64 holds.
    let vast = large_fleet(100, 999_999_999).replace(
        "kind = \"process\"",
        "kind = \"process\"\nactivities = 999999999\nconcurrency = 999999999",
    );
    let report = plan::check_text(&vast, "vast.toml", 20.0).expect("valid");
    let rendered = plan::text::render_text(&report, false);
    assert!(!rendered.contains(&u64::MAX.to_string()), "{rendered}");
    assert!(
        rendered.contains("MaxChannels on queue manager: no value covers the plan (more than 999999999 with 20%"),
        "{rendered}"
    );
    let markdown = plan::markdown::render_markdown(&report);
    assert!(!markdown.contains(&u64::MAX.to_string()), "{markdown}");
    let mqsc = plan::emit::mqsc(
        &Plan::new(Model::from_toml(&vast, "vast.toml".as_ref()).expect("valid")),
        20.0,
    );
    assert!(!mqsc.contains(&u64::MAX.to_string()), "{mqsc}");
}

#[test]
fn max_active_channels_above_max_channels_gets_a_note() {
    let text = SMALL.replace("max_channels = 10", "max_channels = 10\nmax_active_channels = 40");
    let report = plan::check_text(&text, "small.toml", 20.0).expect("valid");
    let note = report
        .recommendations
        .iter()
        .find(|r| r.scope == "queue manager" && r.limit.is_none())
        .expect("a note");
    assert!(
        note.text
            .starts_with("max_active_channels (40) is above max_channels (10)"),
        "{}",
        note.text
    );
    let rendered = plan::text::render_text(&report, false);
    assert!(
        rendered.contains("  - queue manager: max_active_channels (40) is above"),
        "{rendered}"
    );
    let fine = plan::check_text(SMALL, "small.toml", 20.0).expect("valid");
    assert!(
        fine.recommendations
            .iter()
            .all(|r| !r.text.contains("max_active_channels"))
    );
}

/// The texts of an SVG chart: its labels, legend entries and axis ticks.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("</text>")
        .filter_map(|part| part.rsplit_once('>').map(|(_, text)| text.trim().to_owned()))
        .filter(|text| !text.is_empty())
        .collect()
}

fn mixed_fleet_chart(from: u64, to: u64) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/mixed-fleet.toml")).expect("model");
    let plan = Plan::new(Model::from_toml(&text, "mixed-fleet.toml".as_ref()).expect("valid"));
    svg_texts(&chart::render_svg(&sweep::sweep(&plan, 0, from, to, 20.0)).expect("svg"))
}

#[test]
fn regression_a_chart_draws_the_limit_that_fails_first() {
    // orders fails MAXINSTC (its NAT address group) from 7 instances on.
    let texts = mixed_fleet_chart(8, 10);
    for label in [
        "MAXINSTC: channel APP.SVRCONN, address group nat-egress",
        "MAXINSTC 30",
        "first failure: 2537 (MAXINSTC) at 7, before this range",
    ] {
        assert!(texts.iter().any(|t| t == label), "the SVG lacks {label:?}: {texts:?}");
    }
    // No marker at 7 on an axis that starts at 8.
    assert!(
        !texts.iter().any(|t| t == "first failure: 2537 (MAXINSTC) at 7"),
        "{texts:?}"
    );
    // One row: its points are drawn, on an axis a count either side, with the marker at 7.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/mixed-fleet.toml")).expect("model");
    let plan = Plan::new(Model::from_toml(&text, "mixed-fleet.toml".as_ref()).expect("valid"));
    let svg = chart::render_svg(&sweep::sweep(&plan, 0, 7, 7, 20.0)).expect("svg");
    assert!(svg.matches("<circle").count() >= 3, "no points on a one-row chart");
    let texts = svg_texts(&svg);
    assert!(
        texts.iter().any(|t| t == "first failure: 2537 (MAXINSTC) at 7"),
        "{texts:?}"
    );
    for tick in ["6", "8"] {
        assert!(texts.iter().any(|t| t == tick), "the axis lacks {tick}: {texts:?}");
    }
    // The connection limit and MAXUMSGS are drawn when they are what fails first.
    for (extra, label) in [
        ("max_connections = 25", "max_connections 25"),
        ("max_uncommitted = 1", "MAXUMSGS 1"),
    ] {
        let text = SMALL.replace("max_channels = 10", &format!("max_channels = 10\n{extra}"));
        let text = if extra.starts_with("max_uncommitted") {
            text.replace("\"logicapps-builtin\"", "\"custom\"")
                .replace("connections = 10", "connections = 10\nhandles_per_connection = 1\nuncommitted = 5")
                .replace("[[app.workload]]\nqueue = \"ORDERS.IN\"\nkind = \"browse-lock-trigger\"\nbatch = 20\nconcurrency = 10\n", "")
        } else {
            text
        };
        let plan = Plan::new(Model::from_toml(&text, "small.toml".as_ref()).expect("valid"));
        let texts = svg_texts(&chart::render_svg(&sweep::sweep(&plan, 0, 1, 5, 20.0)).expect("svg"));
        assert!(texts.iter().any(|t| t == label), "the SVG lacks {label:?}: {texts:?}");
    }
}

#[test]
fn regression_a_sweep_chart_names_a_limit_above_its_top() {
    // orders at 5 instances: 39 channel instances on the queue manager, MAXINSTC 30 and
    // MAXINST 80 drawn; MaxChannels 100 is above the axis and said so in the legend.
    let texts = mixed_fleet_chart(5, 5);
    for label in ["MAXINST 80", "MAXINSTC 30", "MaxChannels 100 (above the chart)"] {
        assert!(texts.iter().any(|t| t == label), "the SVG lacks {label:?}: {texts:?}");
    }
    // Over a range whose data reach it, it is drawn as a line.
    let texts = mixed_fleet_chart(1, 40);
    assert!(texts.iter().any(|t| t == "MaxChannels 100"), "{texts:?}");
}

#[test]
fn regression_a_bad_fake_qm_address_is_a_usage_error() {
    for addr in ["abc", "10.1.2.3:1414", "[::1]:23100"] {
        let out = mqplan(&["validate", "models/mixed-fleet.toml", "--fake-qm", addr]);
        assert_eq!(out.status.code(), Some(64), "{addr}: {}", stderr(&out));
        assert!(stderr(&out).contains("--fake-qm"), "{addr}: {}", stderr(&out));
    }
}

#[test]
fn regression_every_command_help_gives_its_exit_codes() {
    let emit = stdout(&mqplan(&["--help"]));
    let line = emit.lines().find(|l| l.trim_start().starts_with("emit")).expect("emit");
    assert!(line.contains("fake queue manager"), "{line}");
    for (args, codes) in [
        (
            &["check", "--help"][..],
            &["0 ", "1 ", "2 ", "3 ", "64", "65", "74"][..],
        ),
        (&["sweep", "--help"], &["0 ", "64", "65", "74"]),
        (&["validate", "--help"], &["0 ", "1 ", "64", "65", "74"]),
        (&["emit", "mqsc", "--help"], &["0 ", "64", "65", "74"]),
        (&["emit", "keda", "--help"], &["0 ", "2 ", "64", "65", "74"]),
        (&["emit", "fake-qm", "--help"], &["0 ", "64", "65", "74"]),
    ] {
        let out = mqplan(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = stdout(&out);
        let exit = help
            .split_once("Exit codes:")
            .unwrap_or_else(|| panic!("{args:?} gives no exit codes:\n{help}"))
            .1;
        for code in codes {
            assert!(exit.contains(&format!("  {code}")), "{args:?} lacks {code:?}:\n{help}");
        }
    }
}
