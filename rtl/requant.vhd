-- requant: ReLU, then requantization of LANES accumulators per clock to the next
-- layer's unsigned activation width (docs/numerics.md, section 5):
--   y = min((max(acc, 0) * mult + 2**(shift-1)) >> shift, 2**OUT_BITS - 1)
-- with one (MULT, SHIFT) for the layer, or with PER_NEURON one pair per neuron from the
-- mults/shifts ports (per-neuron weight scales; lane l of beat i is neuron i*LANES+l).
-- A shift-only requantizer is MULT = 1 with MULT_BITS = 1: no multiplier remains.
-- One registered stage with a valid/ready handshake; LANES multipliers per layer.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity requant is
  generic (
    ACC_BITS   : positive := 24;     -- signed input width
    LANES      : positive := 1;      -- values per beat
    OUT_BITS   : positive := 8;      -- unsigned output width
    MULT_BITS  : positive := 16;     -- width of the multipliers
    MULT       : natural  := 32768;  -- multiplier, < 2**MULT_BITS (not PER_NEURON)
    SHIFT      : positive := 16;     -- rounding right shift, >= 1 (not PER_NEURON)
    PER_NEURON : boolean  := false;  -- take mults/shifts per neuron from the ports
    N_NEURONS  : positive := 1;      -- neurons per image (PER_NEURON)
    -- Test only (negative tests prove the benches catch it): truncate instead of round.
    FAULT_NO_ROUND : boolean := false
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    -- per-neuron constants, neuron n at [(n+1)*W-1 : n*W] (PER_NEURON only)
    mults     : in  std_logic_vector(N_NEURONS * MULT_BITS - 1 downto 0) := (others => '0');
    shifts    : in  std_logic_vector(N_NEURONS * 8 - 1 downto 0) := (others => '0');
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(LANES * ACC_BITS - 1 downto 0);
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(LANES * OUT_BITS - 1 downto 0)
  );
end entity requant;

architecture rtl of requant is
  -- relu(acc) < 2**(ACC_BITS-1); the product and the rounding constant fit in PW bits.
  constant PW    : positive := ACC_BITS - 1 + MULT_BITS + 1;
  constant YMAX  : unsigned(PW - 1 downto 0) := to_unsigned(2**OUT_BITS - 1, PW);
  constant BEATS : positive := (N_NEURONS + LANES - 1) / LANES;
  signal   out_v : std_logic := '0';
  signal   ready : std_logic;
  -- PER_NEURON: which neurons (one spare value: synthesis checks beat + 1 statically)
  signal   beat  : natural range 0 to BEATS := 0;

  -- 2**(s-1): adding it before the right shift by s rounds half up.
  function rounding_constant(s : natural) return unsigned is
  begin
    if FAULT_NO_ROUND or s = 0 then
      return to_unsigned(0, PW);
    end if;
    return shift_left(to_unsigned(1, PW), s - 1);
  end function;
begin
  assert ACC_BITS >= 2 report "requant: ACC_BITS must be >= 2" severity failure;
  assert PER_NEURON or MULT < 2**MULT_BITS
    report "requant: MULT does not fit MULT_BITS" severity failure;
  assert PER_NEURON or SHIFT < PW
    report "requant: SHIFT exceeds the product width" severity failure;
  assert OUT_BITS <= 30 report "requant: OUT_BITS must be <= 30" severity failure;

  ready     <= '1' when out_v = '0' or out_ready = '1' else '0';
  in_ready  <= ready;
  out_valid <= out_v;

  p_main : process (clk)
    variable r : unsigned(ACC_BITS - 2 downto 0);
    variable p : unsigned(PW - 1 downto 0);
    variable m : unsigned(MULT_BITS - 1 downto 0);
    variable s : natural;
    variable n : natural;
  begin
    if rising_edge(clk) then
      if ready = '1' then
        out_v <= in_valid;
        if in_valid = '1' then
          for l in 0 to LANES - 1 loop
            if in_data((l + 1) * ACC_BITS - 1) = '1' then  -- ReLU
              r := (others => '0');
            else
              r := unsigned(in_data((l + 1) * ACC_BITS - 2 downto l * ACC_BITS));
            end if;
            m := to_unsigned(MULT, MULT_BITS);
            s := SHIFT;
            n := beat * LANES + l;
            if PER_NEURON and n < N_NEURONS then
              m := unsigned(mults((n + 1) * MULT_BITS - 1 downto n * MULT_BITS));
              s := to_integer(unsigned(shifts((n + 1) * 8 - 1 downto n * 8)));
            end if;
            p := resize(r * m, PW) + rounding_constant(s);
            p := shift_right(p, s);
            if p > YMAX then
              p := YMAX;
            end if;
            out_data((l + 1) * OUT_BITS - 1 downto l * OUT_BITS) <=
              std_logic_vector(p(OUT_BITS - 1 downto 0));
          end loop;
          beat <= 0 when beat >= BEATS - 1 else beat + 1;
        end if;
      end if;
      if rst = '1' then
        out_v <= '0';
        beat  <= 0;
      end if;
    end if;
  end process p_main;
end architecture rtl;
