//! Exact rational arithmetic on `i128`, so that `0.5`, `1/2` and `\frac{2}{4}` compare
//! exactly and only irrational or decimal answers fall back to floating point.

/// Largest integer exponent evaluated exactly.
const MAX_EXACT_EXPONENT: i128 = 256;

/// A rational with `i128` parts, always reduced with a positive denominator; every operation
/// is checked and gives `None` on overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rat {
    pub(super) num: i128,
    pub(super) den: i128,
}

impl Rat {
    pub(super) const ONE: Rat = Rat { num: 1, den: 1 };
    pub(super) const HUNDREDTH: Rat = Rat { num: 1, den: 100 };

    fn new(num: i128, den: i128) -> Option<Rat> {
        if den == 0 {
            return None;
        }
        let g = i128::try_from(gcd(num.unsigned_abs(), den.unsigned_abs())).ok()?;
        let (mut num, mut den) = (num / g, den / g);
        if den < 0 {
            num = num.checked_neg()?;
            den = den.checked_neg()?;
        }
        Some(Rat { num, den })
    }

    pub(super) fn int(n: i128) -> Rat {
        Rat { num: n, den: 1 }
    }

    /// Parses `digits[.digits][e[-]digits]` exactly (`0.125` is `1/8`, `1e-2` is `1/100`).
    pub(super) fn from_decimal(text: &str) -> Option<Rat> {
        if let Some((mantissa, exponent)) = text.split_once('e') {
            let exponent: i128 = exponent.parse().ok()?;
            return Rat::from_decimal(mantissa)?.mul(Rat::int(10).pow(Rat::int(exponent))?);
        }
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let digits = format!("{int}{frac}");
        let num: i128 = digits.parse().ok()?;
        let den = 10i128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        Rat::new(num, den)
    }

    pub(super) fn add(self, o: Rat) -> Option<Rat> {
        let num = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Rat::new(num, self.den.checked_mul(o.den)?)
    }

    pub(super) fn neg(self) -> Option<Rat> {
        Some(Rat {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    pub(super) fn sub(self, o: Rat) -> Option<Rat> {
        self.add(o.neg()?)
    }

    pub(super) fn mul(self, o: Rat) -> Option<Rat> {
        Rat::new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    pub(super) fn div(self, o: Rat) -> Option<Rat> {
        Rat::new(self.num.checked_mul(o.den)?, self.den.checked_mul(o.num)?)
    }

    pub(super) fn pow(self, e: Rat) -> Option<Rat> {
        if e.den != 1 || e.num.abs() > MAX_EXACT_EXPONENT {
            return None;
        }
        let mut result = Rat::ONE;
        let mut base = if e.num < 0 { Rat::ONE.div(self)? } else { self };
        let mut n = e.num.unsigned_abs();
        while n > 0 {
            if n & 1 == 1 {
                result = result.mul(base)?;
            }
            n >>= 1;
            if n > 0 {
                base = base.mul(base)?;
            }
        }
        Some(result)
    }

    pub(super) fn sqrt(self) -> Option<Rat> {
        if self.num < 0 {
            return None;
        }
        let root = |n: i128| {
            let r = n.unsigned_abs().isqrt();
            let r = i128::try_from(r).ok()?;
            (r.checked_mul(r)? == n).then_some(r)
        };
        Rat::new(root(self.num)?, root(self.den)?)
    }

    pub(super) fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}
