//! Deterministic filler text.

use crate::gen::rng::SplitMix64 as StdRng;
use rand::Rng;

const WORDS: &[&str] = &[
    "alpha",
    "harbor",
    "lantern",
    "quartz",
    "meadow",
    "signal",
    "copper",
    "violet",
    "summit",
    "river",
    "orbit",
    "canvas",
    "ember",
    "falcon",
    "glacier",
    "horizon",
    "island",
    "jasmine",
    "kernel",
    "lattice",
    "marble",
    "nebula",
    "oasis",
    "prism",
    "quiver",
    "raven",
    "saffron",
    "tundra",
    "umbra",
    "vertex",
    "willow",
    "xenon",
    "yonder",
    "zenith",
    "budget",
    "roadmap",
    "release",
    "customer",
    "invoice",
    "meeting",
    "sprint",
    "backlog",
    "design",
    "review",
    "launch",
    "metric",
    "onboarding",
    "policy",
    "contract",
    "vendor",
    "search",
    "index",
    "latency",
    "throughput",
    "deploy",
    "rollback",
    "incident",
    "postmortem",
    "hiring",
    "interview",
    "quarterly",
    "planning",
    "offsite",
    "retro",
    "the",
    "and",
    "with",
    "for",
    "from",
    "into",
    "over",
    "under",
    "about",
    "after",
    "before",
    "during",
    "between",
    "team",
    "project",
    "notes",
    "draft",
    "final",
    "update",
    "weekly",
    "monthly",
    "goal",
    "result",
    "risk",
    "owner",
    "decision",
    "question",
    "answer",
    "summary",
    "detail",
    "timeline",
    "milestone",
    "feedback",
    "analysis",
    "report",
];

pub fn word(rng: &mut StdRng) -> &'static str {
    WORDS[rng.gen_range(0..WORDS.len())]
}

pub fn words(rng: &mut StdRng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(word(rng));
    }
    s
}

pub fn sentence(rng: &mut StdRng) -> String {
    let n = rng.gen_range(5..16);
    let mut s = words(rng, n);
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s.push('.');
    s
}

pub fn title(rng: &mut StdRng) -> String {
    let n = rng.gen_range(2..5);
    (0..n)
        .map(|_| {
            let w = word(rng);
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub const PEOPLE: &[&str] = &[
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Ken Thompson",
    "Frances Allen",
    "John Backus",
    "Radia Perlman",
];
