//! Serf's way of testing Vivaldi: nodes at known places with the true
//! round trips between them, updated from random peers for many rounds,
//! then every estimate compared with the truth.

use super::*;

/// Round trips (seconds) between every pair.
type Truth = Vec<Vec<f64>>;

fn simulate(clients: &mut [Client], truth: &Truth, cycles: usize) {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let n = clients.len();
    for _ in 0..cycles {
        for i in 0..n {
            let j = rng.gen_range(0..n);
            if j == i {
                continue;
            }
            let other = clients[j].coordinate().clone();
            let rtt = Duration::from_secs_f64(truth[i][j]);
            clients[i]
                .update(&format!("node_{j}"), &other, rtt)
                .expect("a valid sample");
        }
    }
}

/// (mean, max) relative error of the estimates over every pair.
fn evaluate(clients: &[Client], truth: &Truth) -> (f64, f64) {
    let (mut sum, mut max, mut count) = (0.0, 0.0f64, 0);
    for i in 0..clients.len() {
        for j in i + 1..clients.len() {
            let est = clients[i]
                .distance_to(clients[j].coordinate())
                .as_secs_f64();
            let err = (est - truth[i][j]).abs() / truth[i][j];
            sum += err;
            max = max.max(err);
            count += 1;
        }
    }
    (sum / count as f64, max)
}

fn clients(n: usize) -> Vec<Client> {
    (0..n).map(|_| Client::default()).collect()
}

#[test]
fn converges_on_a_line() {
    // Ten nodes 10 ms apart: the ends are 90 ms from each other.
    let n = 10;
    let truth: Truth = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| (i as f64 - j as f64).abs() * 0.010)
                .collect()
        })
        .collect();
    let mut c = clients(n);
    simulate(&mut c, &truth, 1000);
    let (avg, max) = evaluate(&c, &truth);
    assert!(avg < 0.02, "mean error {avg}");
    assert!(max < 0.10, "max error {max}");
}

#[test]
fn converges_on_a_grid() {
    // 5 x 5 nodes 10 ms apart: a two-dimensional truth in eight dimensions.
    let n = 25;
    let pos = |i: usize| ((i / 5) as f64 * 0.010, (i % 5) as f64 * 0.010);
    let truth: Truth = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let ((x1, y1), (x2, y2)) = (pos(i), pos(j));
                    ((x1 - x2).powi(2) + (y1 - y2).powi(2)).sqrt()
                })
                .collect()
        })
        .collect();
    let mut c = clients(n);
    simulate(&mut c, &truth, 1000);
    let (avg, max) = evaluate(&c, &truth);
    assert!(avg < 0.02, "mean error {avg}");
    assert!(max < 0.15, "max error {max}");
}

#[test]
fn height_models_access_links() {
    // Two sites 50 ms apart, every node behind its own access link of
    // 1 to 5 ms: what a Euclidean space alone cannot express.
    let n = 10;
    let access: Vec<f64> = (0..n).map(|i| 0.001 * (1 + i % 5) as f64).collect();
    let truth: Truth = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let core = if (i < n / 2) == (j < n / 2) {
                        0.0
                    } else {
                        0.050
                    };
                    core + access[i] + access[j]
                })
                .collect()
        })
        .collect();
    let mut c = clients(n);
    simulate(&mut c, &truth, 1000);
    let (avg, _) = evaluate(&c, &truth);
    assert!(avg < 0.10, "mean error {avg}");
    assert!(c.iter().all(|c| c.coordinate().height >= HEIGHT_MIN));
}

#[test]
fn nearer_nodes_estimate_nearer() {
    // What `?near=` relies on: the order of estimates matches the truth.
    let n = 5;
    let truth: Truth = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| (i as f64 - j as f64).abs() * 0.020 + 0.001)
                .collect()
        })
        .collect();
    let mut c = clients(n);
    simulate(&mut c, &truth, 500);
    let from = c[0].coordinate().clone();
    let est: Vec<f64> = c[1..]
        .iter()
        .map(|o| from.distance_secs(o.coordinate()))
        .collect();
    assert!(est.windows(2).all(|w| w[0] < w[1]), "{est:?}");
}

#[test]
fn the_median_filter_ignores_one_outlier() {
    let mut a = Client::default();
    let peer = Coordinate::default();
    for _ in 0..2 {
        a.update("p", &peer, Duration::from_millis(10)).unwrap();
    }
    // The third sample is the median of (10, 10, 900): 10 ms.
    let before = a.clone();
    let mut b = before.clone();
    a.update("p", &peer, Duration::from_millis(900)).unwrap();
    b.update("p", &peer, Duration::from_millis(10)).unwrap();
    // Not exactly equal: coincident points pick a random direction.
    let (da, db) = (a.distance_to(&peer), b.distance_to(&peer));
    assert!(
        (da.as_secs_f64() - db.as_secs_f64()).abs() < 0.002,
        "{da:?} vs {db:?}"
    );
    // Another peer has its own samples.
    a.forget_node("p");
    assert!(a.latency_samples.is_empty());
}

#[test]
fn bad_samples_are_refused_and_change_nothing() {
    let mut a = Client::default();
    let before = a.coordinate().clone();
    let mut nan = Coordinate::default();
    nan.vec[0] = f64::NAN;
    assert_eq!(
        a.update("p", &nan, Duration::from_millis(5)),
        Err(CoordinateError::Invalid)
    );
    let inf = Coordinate {
        height: f64::INFINITY,
        ..Default::default()
    };
    assert_eq!(
        a.update("p", &inf, Duration::from_millis(5)),
        Err(CoordinateError::Invalid)
    );
    let short = Coordinate {
        vec: vec![0.0; 3],
        ..Default::default()
    };
    assert_eq!(
        a.update("p", &short, Duration::from_millis(5)),
        Err(CoordinateError::Incompatible)
    );
    assert!(matches!(
        a.update("p", &Coordinate::default(), Duration::from_secs(11)),
        Err(CoordinateError::BadRtt(_))
    ));
    assert_eq!(a.coordinate(), &before);
    assert!(a.latency_samples.is_empty());
}

#[test]
fn a_zero_rtt_is_a_tiny_one() {
    let mut a = Client::default();
    let c = a
        .update("p", &Coordinate::default(), Duration::ZERO)
        .unwrap();
    assert!(c.is_valid());
    assert_eq!(a.resets(), 0);
}
