//! `docker-compose.yml` and the `Dockerfile`, checked for structure (no Docker engine runs
//! here): every service the demo needs, built or pulled, published where the README says,
//! healthy before what depends on it starts, configured only with variables the README
//! documents; and a multi-stage build whose runtime stages run as a non-root user.

use std::collections::BTreeSet;

use serde_json::Value;

fn repo_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose() -> Value {
    serde_yaml_ng::from_str(&repo_file("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

/// The stage names of the Dockerfile (`FROM … AS name`) and, for each, its `USER`.
fn dockerfile_stages() -> Vec<(String, Option<String>)> {
    let mut stages: Vec<(String, Option<String>)> = Vec::new();
    for line in repo_file("Dockerfile").lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["FROM", _, as_, name] if as_.eq_ignore_ascii_case("as") => {
                stages.push(((*name).to_owned(), None));
            }
            ["FROM", ..] => stages.push((String::new(), None)),
            ["USER", user] => stages.last_mut().unwrap().1 = Some((*user).to_owned()),
            _ => {}
        }
    }
    stages
}

#[test]
fn compose_runs_every_part_of_the_demo_healthy_and_documented() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for needed in ["provider", "relying-party", "postgres", "redis", "mailpit"] {
        assert!(names.contains(needed), "service {needed}");
    }
    let stages = dockerfile_stages();
    let readme = repo_file("README.md");
    for (name, service) in services {
        // Built from a stage of our Dockerfile, or a pinned image.
        match (&service["build"], service["image"].as_str()) {
            (Value::Object(build), None) => {
                let target = build["target"].as_str().expect("a build names its target");
                assert!(
                    stages.iter().any(|(s, _)| s == target),
                    "{name}: stage {target}"
                );
            }
            (Value::Null, Some(image)) => {
                assert!(
                    image.contains(':') && !image.ends_with(":latest"),
                    "{name}: pin {image}"
                );
            }
            other => panic!("{name}: build or image, got {other:?}"),
        }
        let test = &service["healthcheck"]["test"];
        assert!(
            test.is_array() && test[0].is_string(),
            "{name}: a health check"
        );
        if let Some(depends) = service["depends_on"].as_object() {
            for (on, how) in depends {
                assert!(
                    names.contains(on.as_str()),
                    "{name} depends on unknown {on}"
                );
                assert_eq!(how["condition"], "service_healthy", "{name} waits for {on}");
            }
        }
        // Our own services take only variables the README documents.
        if service["build"].is_object() {
            for variable in service["environment"]
                .as_object()
                .expect("environment")
                .keys()
            {
                assert!(
                    readme.contains(&format!("`{variable}`")),
                    "{name}: {variable} in the README"
                );
            }
        }
    }
    let published = |service: &str| -> Vec<String> {
        services[service]["ports"]
            .as_array()
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The relying party lives in the provider's network namespace, so both ports are there.
    assert_eq!(
        services["relying-party"]["network_mode"],
        "service:provider"
    );
    assert!(
        published("provider")
            .iter()
            .any(|p| p.ends_with(":8080:8080"))
    );
    assert!(
        published("provider")
            .iter()
            .any(|p| p.ends_with(":3000:3000"))
    );
    assert!(
        published("mailpit")
            .iter()
            .any(|p| p.ends_with(":8025:8025"))
    );
    assert_eq!(services["provider"]["environment"]["SMTP_HOST"], "mailpit");
    assert!(readme.contains("docker compose up --build"));
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_as_a_non_root_user() {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 3, "{stages:?}");
    for runtime in ["provider", "relying-party"] {
        let (_, user) = stages
            .iter()
            .find(|(name, _)| name == runtime)
            .unwrap_or_else(|| panic!("a {runtime} stage"));
        let user = user.as_deref().unwrap_or("root");
        assert!(!["root", "0"].contains(&user), "{runtime} runs as {user}");
    }
    // The last stage is what a plain `docker build` produces: the provider.
    assert_eq!(stages.last().unwrap().0, "provider");
}
