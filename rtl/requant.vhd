-- requant: ReLU, then requantization of LANES accumulators per clock to the next
-- layer's unsigned activation width (docs/numerics.md, section 5):
--   y = min((max(acc, 0) * mult + 2**(shift-1)) >> shift, 2**OUT_BITS - 1)   shift >= 1
--   y = min((max(acc, 0) * mult) << -shift, 2**OUT_BITS - 1)                  shift <= 0
-- with one (MULT, SHIFT) for the layer, or with PER_NEURON one pair per neuron from the
-- mults/shifts ports (per-neuron weight scales; lane l of beat i is neuron i*LANES+l).
-- The beat counter that picks them starts again after every in_last (an image's last
-- beat), so one image of the wrong length cannot shift the constants of every image
-- after it; in simulation an in_last on any other beat than the last, or a last beat
-- without it, is an assertion error (the run fails, the constants are back in step).
-- A shift-only requantizer is MULT = 1 with MULT_BITS = 1: no multiplier remains.
-- Any shift is exact: a right shift past the product width gives 0 and a left shift of
-- OUT_BITS or more saturates every r > 0, so both are clamped to those bounds inside.
-- Four registered stages that move together whenever the output register is free or
-- read: ReLU and the constants; partial products; their sum; rounding, shifting and
-- saturation (one stage held them all and was the critical path of mlp256). The
-- product r * m is split into partial products of CB-bit chunks of r, each one
-- multiplier block between two registers (at most 17 unsigned bits fit a DSP's 18-bit
-- signed input, and MULT_BITS <= 16): a product wider than a block had become two
-- blocks and an adder in one clock, the critical path of mlp256 at PE = 64 (12.1 ns).
-- CB also keeps a partial product below 2**31, so it is an integer product: numeric_std's
-- "*" on 17 x 16 bits was a third of mlp256's simulation time (docs/simspeed.md).
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
    SHIFT      : integer  := 16;     -- right shift when >= 1, left shift by -SHIFT when <= 0
    PER_NEURON : boolean  := false;  -- take mults/shifts per neuron from the ports
    N_NEURONS  : positive := 1;      -- neurons per image (PER_NEURON)
    SHIFT_BITS : positive := 8       -- signed width of each per-neuron shift (PER_NEURON)
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    -- per-neuron constants, neuron n at [(n+1)*W-1 : n*W] (PER_NEURON only)
    mults     : in  std_logic_vector(N_NEURONS * MULT_BITS - 1 downto 0) := (others => '0');
    shifts    : in  std_logic_vector(N_NEURONS * SHIFT_BITS - 1 downto 0) := (others => '0');
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(LANES * ACC_BITS - 1 downto 0);
    in_last   : in  std_logic;  -- the image's last beat (PER_NEURON realigns on it)
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(LANES * OUT_BITS - 1 downto 0) := (others => '0')
  );
end entity requant;

architecture rtl of requant is
  -- relu(acc) < 2**(ACC_BITS-1), so the product r * m is below 2**PW. WIDE holds the
  -- product plus the rounding constant of a right shift by up to PW + 1, and the product
  -- shifted left by up to OUT_BITS.
  constant PW    : positive := ACC_BITS - 1 + MULT_BITS;
  constant WIDE  : positive := PW + OUT_BITS + 1;
  constant YMAX  : unsigned(WIDE - 1 downto 0) := to_unsigned(2**OUT_BITS - 1, WIDE);
  constant BEATS : positive := (N_NEURONS + LANES - 1) / LANES;
  -- the shifts a lane can carry: the layer's one shift, or any per-neuron field
  function pick(pn : boolean; a, b : integer) return integer is
  begin
    if pn then
      return a;
    end if;
    return b;
  end function;
  constant SMIN  : integer := pick(PER_NEURON, -(2**(SHIFT_BITS - 1)), SHIFT);
  constant SMAX  : integer := pick(PER_NEURON, 2**(SHIFT_BITS - 1) - 1, SHIFT);
  type relu_t  is array (0 to LANES - 1) of unsigned(ACC_BITS - 2 downto 0);
  type mult_t  is array (0 to LANES - 1) of unsigned(MULT_BITS - 1 downto 0);
  type prod_t  is array (0 to LANES - 1) of unsigned(PW - 1 downto 0);
  constant CB    : positive := minimum(17, 31 - MULT_BITS);  -- bits of r per partial product
  constant NCH   : positive := (ACC_BITS - 1 + CB - 1) / CB;  -- partial products per lane
  type part_t  is array (0 to LANES * NCH - 1) of unsigned(CB + MULT_BITS - 1 downto 0);
  type shift_t is array (0 to LANES - 1) of integer range SMIN to SMAX;
  signal   r0    : relu_t := (others => (others => '0'));  -- stage 0: ReLU, constants
  signal   m0    : mult_t := (others => (others => '0'));
  signal   s0    : shift_t := (others => SMAX);
  signal   v0    : std_logic := '0';
  signal   pp    : part_t := (others => (others => '0'));  -- stage 1: partial products
  signal   sp    : shift_t := (others => SMAX);
  signal   vp    : std_logic := '0';
  signal   p1    : prod_t := (others => (others => '0'));  -- stage 2: products
  signal   s1    : shift_t := (others => SMAX);
  signal   v1    : std_logic := '0';
  signal   out_v : std_logic := '0';                       -- stage 3: out_data
  signal   ready : std_logic;
  -- PER_NEURON: which neurons (one spare value: synthesis checks beat + 1 statically)
  signal   beat  : natural range 0 to BEATS := 0;

  -- Section 5 after the product: round half up and shift right, or shift left; saturate.
  function scale(prod : unsigned; s : integer) return unsigned is
    variable p : unsigned(WIDE - 1 downto 0) := resize(prod, WIDE);
    variable n : natural;
    variable up : std_logic;
  begin
    if s >= 1 then
      n := minimum(s, PW + 1);        -- p < 2**PW: any larger shift also gives 0
      -- round half up: (p + 2**(n-1)) >> n is p >> n plus bit n-1 of p
      up := p(n - 1);
      p := shift_right(p, n);
      if up = '1' then
        p := p + 1;
      end if;
    else
      n := minimum(-s, OUT_BITS);     -- p > 0 shifted by OUT_BITS already saturates
      p := shift_left(p, n);
    end if;
    if p > YMAX then
      p := YMAX;
    end if;
    return p(OUT_BITS - 1 downto 0);
  end function;
begin
  assert ACC_BITS >= 2 report "requant: ACC_BITS must be >= 2" severity failure;
  assert PER_NEURON or MULT < 2**MULT_BITS
    report "requant: MULT does not fit MULT_BITS" severity failure;
  assert OUT_BITS <= 30 report "requant: OUT_BITS must be <= 30" severity failure;
  assert SHIFT_BITS <= 31 report "requant: SHIFT_BITS must be <= 31" severity failure;

  -- both stages move when the output register is free or being read
  ready     <= '1' when out_v = '0' or out_ready = '1' else '0';
  in_ready  <= ready;
  out_valid <= out_v;

  p_main : process (clk)
    variable r : unsigned(ACC_BITS - 2 downto 0);
    variable m : unsigned(MULT_BITS - 1 downto 0);
    variable mf : std_logic_vector(MULT_BITS - 1 downto 0);
    variable sf : std_logic_vector(SHIFT_BITS - 1 downto 0);
    variable s : integer range SMIN to SMAX;
    variable n : natural;
    variable c : unsigned(CB - 1 downto 0);
    variable t : unsigned(PW - 1 downto 0);
  begin
    if rising_edge(clk) then
      if ready = '1' then
        -- stage 3: round, shift, saturate the products of stage 2
        out_v <= v1;
        if v1 = '1' then
          for l in 0 to LANES - 1 loop
            out_data((l + 1) * OUT_BITS - 1 downto l * OUT_BITS) <=
              std_logic_vector(scale(p1(l), s1(l)));
          end loop;
        end if;
        -- stage 2: the product, the sum of the shifted partial products
        v1 <= vp;
        if vp = '1' then
          for l in 0 to LANES - 1 loop
            -- partial product k has weight 2**(k*CB): added to bits k*CB and up only
            -- (the same adder as a full-width one, without its constant-0 low bits)
            t := resize(pp(l * NCH), PW);
            for k in 1 to NCH - 1 loop
              t(PW - 1 downto k * CB) :=
                t(PW - 1 downto k * CB) + resize(pp(l * NCH + k), PW - k * CB);
            end loop;
            p1(l) <= t;
            s1(l) <= sp(l);
          end loop;
        end if;
        -- stage 1: partial products (registered operands in, registered partial product
        -- out: one multiplier block alone between two registers)
        vp <= v0;
        if v0 = '1' then
          for l in 0 to LANES - 1 loop
            for k in 0 to NCH - 1 loop
              c := (others => '0');
              for b in 0 to CB - 1 loop
                if k * CB + b < ACC_BITS - 1 then
                  c(b) := r0(l)(k * CB + b);
                end if;
              end loop;
              pp(l * NCH + k) <=
                to_unsigned(to_integer(c) * to_integer(m0(l)), CB + MULT_BITS);
            end loop;
            sp(l) <= s0(l);
          end loop;
        end if;
        -- stage 0: ReLU and the lane's constants
        v0 <= in_valid;
        if in_valid = '1' then
          for l in 0 to LANES - 1 loop
            if in_data((l + 1) * ACC_BITS - 1) = '1' then  -- ReLU
              r := (others => '0');
            else
              r := unsigned(in_data((l + 1) * ACC_BITS - 2 downto l * ACC_BITS));
            end if;
            n := beat * LANES + l;
            if not PER_NEURON then
              m := to_unsigned(MULT, MULT_BITS);
              s := SHIFT;
            elsif n < N_NEURONS then
              -- slice, then convert: GHDL 4.1 --synth crashes on a conversion of a variable slice
              mf := mults((n + 1) * MULT_BITS - 1 downto n * MULT_BITS);
              sf := shifts((n + 1) * SHIFT_BITS - 1 downto n * SHIFT_BITS);
              m  := unsigned(mf);
              s  := to_integer(signed(sf));
            else  -- a lane past the last neuron: its output is ignored
              m := (others => '0');
              s := SMAX;
            end if;
            r0(l) <= r;
            m0(l) <= m;
            s0(l) <= s;
          end loop;
          if PER_NEURON then
            -- severity error, not failure: the run fails (the benches scan the log) and
            -- the simulation goes on, so a bench can see the next image in step
            -- pragma translate_off
            assert rst = '1' or in_last = '0' or beat = BEATS - 1
              report "requant: in_last on beat " & integer'image(beat) & " (from 0) of an " &
                     "image of " & integer'image(BEATS) & ", the next starts at neuron 0"
              severity error;
            assert rst = '1' or in_last = '1' or beat /= BEATS - 1
              report "requant: no in_last on the image's last beat (" &
                     integer'image(BEATS - 1) & ")"
              severity error;
            -- pragma translate_on
          end if;
          beat <= 0 when in_last = '1' or beat >= BEATS - 1 else beat + 1;
        end if;
      end if;
      if rst = '1' then
        v0    <= '0';
        vp    <= '0';
        v1    <= '0';
        out_v <= '0';
        beat  <= 0;
      end if;
    end if;
  end process p_main;
end architecture rtl;
