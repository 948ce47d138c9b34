//! Network coordinates as they travel and are stored: a point in Serf's
//! Vivaldi space (8 dimensions, a height above it and an adjustment term)
//! with the distance between two of them as an estimated round-trip
//! time, and the per-node rows of the coordinate table. The algorithm
//! that moves a coordinate lives in `crate::coordinate`; these are the
//! values and the geometry every holder of one needs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Serf's dimensionality: enough for real networks, small on the wire.
pub const DIMENSIONALITY: usize = 8;

/// Serf's `VivaldiErrorMax`: a new coordinate's error, and the cap.
pub const ERROR_MAX: f64 = 1.5;

/// Serf's `HeightMin`: no height below 10 µs, so that two nodes at one
/// point still estimate a non-zero round trip.
pub const HEIGHT_MIN: f64 = 10.0e-6;

/// Distances and magnitudes below this count as zero (Serf's threshold).
pub(crate) const ZERO_THRESHOLD: f64 = 1.0e-6;

/// A Vivaldi coordinate, in seconds, with Consul's JSON field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Coordinate {
    pub vec: Vec<f64>,
    pub error: f64,
    pub adjustment: f64,
    pub height: f64,
}

impl Default for Coordinate {
    /// A node that has measured nothing yet: at the origin, with the
    /// largest error, so that its first peers move it most.
    fn default() -> Self {
        Coordinate {
            vec: vec![0.0; DIMENSIONALITY],
            error: ERROR_MAX,
            adjustment: 0.0,
            height: HEIGHT_MIN,
        }
    }
}

impl Coordinate {
    /// Every component finite: one NaN or infinity, once stored, would
    /// poison every distance computed from it.
    pub fn is_valid(&self) -> bool {
        self.vec.iter().all(|f| f.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }

    /// Same dimensionality: only then does a distance mean anything.
    pub fn is_compatible_with(&self, other: &Coordinate) -> bool {
        self.vec.len() == other.vec.len()
    }

    /// Euclidean distance plus both heights, without adjustments.
    pub fn raw_distance_to(&self, other: &Coordinate) -> f64 {
        magnitude(&diff(&self.vec, &other.vec)) + self.height + other.height
    }

    /// Estimated round trip to `other` in seconds: the raw distance with
    /// both adjustments, unless these would make it negative (Serf keeps
    /// the raw distance then).
    pub fn distance_secs(&self, other: &Coordinate) -> f64 {
        let raw = self.raw_distance_to(other);
        let adjusted = raw + self.adjustment + other.adjustment;
        if adjusted > 0.0 {
            adjusted
        } else {
            raw
        }
    }

    /// [`Coordinate::distance_secs`] as a duration (zero for a value that
    /// cannot be one).
    pub fn distance_to(&self, other: &Coordinate) -> Duration {
        Duration::try_from_secs_f64(self.distance_secs(other)).unwrap_or(Duration::ZERO)
    }

    /// Moves this coordinate by `force` seconds along the line from
    /// `other` to it (towards `other` for a negative force), and scales
    /// its height in proportion, never below [`HEIGHT_MIN`].
    pub fn apply_force(&self, force: f64, other: &Coordinate, height_min: f64) -> Coordinate {
        let (unit, mag) = unit_vector_at(&self.vec, &other.vec);
        let mut ret = self.clone();
        for (v, u) in ret.vec.iter_mut().zip(&unit) {
            *v += u * force;
        }
        if mag > ZERO_THRESHOLD {
            ret.height = ((ret.height + other.height) * force / mag + ret.height).max(height_min);
        }
        ret
    }
}

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

fn magnitude(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The unit vector from `b` to `a` and the distance between them. Two
/// points at one place have no direction: a random one is taken, so that
/// nodes that start together at the origin can still push apart.
fn unit_vector_at(a: &[f64], b: &[f64]) -> (Vec<f64>, f64) {
    let d = diff(a, b);
    let mag = magnitude(&d);
    if mag > ZERO_THRESHOLD {
        return (d.iter().map(|x| x / mag).collect(), mag);
    }
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let r: Vec<f64> = d.iter().map(|_| rng.gen::<f64>() - 0.5).collect();
    let rmag = magnitude(&r);
    if rmag > ZERO_THRESHOLD {
        return (r.iter().map(|x| x / rmag).collect(), 0.0);
    }
    let mut axis = vec![0.0; a.len()];
    if let Some(first) = axis.first_mut() {
        *first = 1.0;
    }
    (axis, 0.0)
}

/// One row of the coordinate table (`/v1/coordinate/nodes`): a node's
/// coordinate in a network segment (always `""` here; Consul Enterprise
/// has others).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CoordinateEntry {
    pub node: String,
    #[serde(default)]
    pub segment: String,
    pub coord: Coordinate,
}

/// `/v1/coordinate/datacenters`: one datacenter's servers in the WAN pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DatacenterMap {
    pub datacenter: String,
    #[serde(rename = "AreaID")]
    pub area_id: String,
    pub coordinates: Vec<CoordinateEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: &[f64]) -> Coordinate {
        let mut c = Coordinate::default();
        c.vec[..v.len()].copy_from_slice(v);
        c
    }

    #[test]
    fn distance_is_euclidean_plus_heights_plus_adjustments() {
        let mut a = at(&[0.0, 0.0, 0.0]);
        let mut b = at(&[3.0, 4.0, 0.0]);
        a.height = 0.5;
        b.height = 0.25;
        assert!((a.raw_distance_to(&b) - 5.75).abs() < 1e-12);
        a.adjustment = 0.1;
        b.adjustment = 0.2;
        assert!((a.distance_secs(&b) - 6.05).abs() < 1e-12);
        // An adjustment that would make it negative is ignored.
        a.adjustment = -10.0;
        assert!((a.distance_secs(&b) - 5.75).abs() < 1e-12);
        assert_eq!(a.distance_to(&b), Duration::from_secs_f64(5.75));
    }

    #[test]
    fn force_moves_along_the_line_and_scales_height() {
        let a = at(&[1.0]);
        let origin = Coordinate::default();
        let pushed = a.apply_force(0.5, &origin, HEIGHT_MIN);
        assert!((pushed.vec[0] - 1.5).abs() < 1e-12);
        assert!(pushed.vec[1..].iter().all(|x| *x == 0.0));
        assert!(pushed.height > a.height);
        let pulled = a.apply_force(-0.5, &origin, HEIGHT_MIN);
        assert!((pulled.vec[0] - 0.5).abs() < 1e-12);
        assert_eq!(pulled.height, HEIGHT_MIN, "height never below the minimum");
    }

    #[test]
    fn coincident_points_push_apart_in_some_direction() {
        let a = Coordinate::default();
        let b = a.apply_force(1.0, &Coordinate::default(), HEIGHT_MIN);
        assert!((a.raw_distance_to(&b) - 1.0 - 2.0 * HEIGHT_MIN).abs() < 1e-9);
    }

    #[test]
    fn validity_rejects_nan_and_infinity_anywhere() {
        assert!(Coordinate::default().is_valid());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut c = Coordinate::default();
            c.vec[3] = bad;
            assert!(!c.is_valid());
            for f in [
                |c: &mut Coordinate, x| c.error = x,
                |c: &mut Coordinate, x| c.adjustment = x,
                |c: &mut Coordinate, x| c.height = x,
            ] {
                let mut c = Coordinate::default();
                f(&mut c, bad);
                assert!(!c.is_valid());
            }
        }
        let short = Coordinate {
            vec: vec![0.0; 2],
            ..Default::default()
        };
        assert!(!short.is_compatible_with(&Coordinate::default()));
    }

    #[test]
    fn json_has_consul_field_names() {
        let e = CoordinateEntry {
            node: "n1".into(),
            segment: String::new(),
            coord: Coordinate::default(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["Node"], "n1");
        assert_eq!(v["Segment"], "");
        assert_eq!(v["Coord"]["Vec"].as_array().map(Vec::len), Some(8));
        assert_eq!(v["Coord"]["Error"], 1.5);
        assert_eq!(v["Coord"]["Height"], 1e-5);
        assert_eq!(v["Coord"]["Adjustment"], 0.0);
    }
}
