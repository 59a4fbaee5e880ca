-- mac_array: PE neurons x P inputs of multiply-accumulate, pipelined, exact widths.
--
-- Per beat (x_* aligned with its ROM word w_data; weight of neuron e, lane q at field
-- e*P+q, W_BITS wide; input lane q at field q, A_BITS wide, unsigned; x_fold is read at
-- a fold's first beat, x_first, and must stay the same through its beats):
--   stage -1  the ROM word and the beat registered as they arrive, no enable
--   stage 0   registered again, no enable
--   stage 1   operands registered (weights and inputs)
--   stage 2   operands registered again, next to the multiplier blocks
--   stage 3   PE x P products, exactly W_BITS + A_BITS + 1 signed bits, registered
--   stage 4   products registered again, away from the multiplier blocks
--   stage 4+l adder tree over the P lanes, one registered level per halving (P > 1)
--   last      acc(e) := (x_first ? bias(x_fold*PE + e) : acc(e)) + sum over the lanes
-- so x_valid reaches res_valid after LAT = 7 + ceil(log2(P)) clocks. Why stages -1 and 0:
-- a ROM word may come from block RAMs across the chip, through the multiplexer of a
-- deep ROM; two plain registers let the placer put one beside the block RAMs and one on
-- the way (with one, mlp256 at PE = 64 had 6.9 ns of routing after the block RAM's
-- 5.6 ns clock-to-output). Why stages 2 and 4:
-- the multiplier blocks sit in a few rows of the device, and with one register on each
-- side the placer put those registers between the block RAMs and the accumulators,
-- leaving 3 ns of routing on each side of the block (mlp256 at PE = 64: 11.4 ns). A
-- second register whose only neighbour is the block can sit beside it. With LUT_MULT a
-- product is the sum of A_BITS gated, shifted copies of the weight, added as a tree with
-- one register per level (ceil(log2 A_BITS) stages instead of 1): adders only, no DSP
-- block, for clocks that an ECP5 MULT18X18D without its (not inferred) registers cannot
-- reach. The beat with
-- x_last completes a fold: its PE accumulators are copied into res_data (neuron e at
-- bits [(e+1)*ACC_BITS-1 : e*ACC_BITS]) with a one-clock res_valid, and res_data holds
-- until the next fold completes. The accumulators are exactly ACC_BITS wide: every
-- partial sum b + (some products) fits them (docs/numerics.md, section 3), so the sums
-- stay exact; the tree keeps W_BITS + A_BITS + 1 + ceil(log2(P)) bits so that no lane
-- sum is ever truncated.
--
-- Zero skip: a beat whose inputs are all zero adds nothing, so it does not enable the
-- operand, product, tree and accumulator registers (only its control bits move). Most
-- MNIST pixels and many ReLU outputs are zero: this is exact and makes simulation
-- several times faster (and saves power).
--
-- Why two bodies: VHDL integers simulate several times faster than numeric_std in GHDL
-- and synthesize to the same widths when their ranges are constrained; values wider
-- than 31 bits (e.g. int16) do not fit them and use numeric_std signed instead.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity mac_array is
  generic (
    PE        : positive := 256;  -- neurons computed in parallel
    P         : positive := 1;    -- inputs per beat
    W_BITS    : positive := 8;    -- signed weight width
    A_BITS    : positive := 8;    -- unsigned input width
    ACC_BITS  : positive := 24;   -- signed accumulator width
    FOLDS     : positive := 1;    -- folds per image; bias holds FOLDS*PE neurons' biases
    FOLD_BITS : positive := 1;
    -- products from adders, one register per level of their tree (no DSP block, more
    -- clocks of latency): integer body only (accumulators up to 31 bits)
    LUT_MULT  : boolean  := false;
    -- "ecp5": stages 2 and 3 in ECP5 multiplier blocks with their own registers
    -- (rtl/ecp5_mult.vhd; the ECP5 synthesis flow); anything else: inferred, plain VHDL.
    -- Integer body with W_BITS <= 18 and A_BITS <= 17 only; otherwise inferred.
    DSP       : string   := "infer"
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    x_valid   : in  std_logic;
    x_first   : in  std_logic;
    x_last    : in  std_logic;
    x_fold    : in  std_logic_vector(FOLD_BITS - 1 downto 0);
    x_data    : in  std_logic_vector(P * A_BITS - 1 downto 0);
    w_data    : in  std_logic_vector(PE * P * W_BITS - 1 downto 0);
    -- neuron n's bias at bits [(n+1)*ACC_BITS-1 : n*ACC_BITS] (a constant in practice)
    bias      : in  std_logic_vector(FOLDS * PE * ACC_BITS - 1 downto 0);
    res_valid : out std_logic := '0';  -- registers start at 0: no X in a netlist simulation
    res_fold  : out std_logic_vector(FOLD_BITS - 1 downto 0) := (others => '0');
    res_data  : out std_logic_vector(PE * ACC_BITS - 1 downto 0) := (others => '0')
  );
end entity mac_array;

architecture rtl of mac_array is
  function clog2(n : positive) return natural is
    variable r : natural := 0;
  begin
    while 2**r < n loop
      r := r + 1;
    end loop;
    return r;
  end function;

  constant PB      : positive := W_BITS + A_BITS + 1;  -- product width
  constant LEVELS  : natural  := clog2(P);             -- adder tree levels
  constant TB      : positive := PB + LEVELS;          -- lane-sum width
  constant USE_INT : boolean  := ACC_BITS <= 31 and TB <= 31;
  -- LUT_MULT: a product is the sum of A_BITS shifted, gated copies of the weight, added
  -- as a tree with a register per level: PL = ceil(log2 A_BITS) product stages
  constant LUTM    : boolean  := LUT_MULT and USE_INT and A_BITS >= 2;
  constant PL      : natural  := clog2(A_BITS);
  constant M       : natural  := (PL - 1) * boolean'pos(LUTM);  -- extra product stages
  -- the registers before and after the multiplier blocks (stages 2 and 4; not LUT_MULT)
  constant DX      : natural  := 2 * boolean'pos(not LUTM);
  constant PS      : positive := 2 + M + DX;   -- the stage that holds the products
  constant LAT     : positive := PS + 3 + LEVELS;  -- x_valid to res_valid
  -- stages 2 (operands) and 3 (products) inside ECP5 multiplier blocks
  constant ECP5    : boolean  := DSP = "ecp5" and USE_INT and not LUTM and W_BITS <= 18 and
                                 A_BITS <= 17;

  -- control bits travelling with the data, stage 1 .. PS+LEVELS
  type ctrl_t is record
    valid, nz, first, last : boolean;
    fold : natural range 0 to FOLDS - 1;
  end record;
  type ctrl_arr is array (0 to PS + LEVELS) of ctrl_t;
  constant IDLE : ctrl_t := (false, false, false, false, 0);
  signal ctrl_r : ctrl_arr := (others => IDLE);
  signal xa_r   : ctrl_t := IDLE;                                                 -- stage -1
  signal xa_d_r : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
  signal x0_r   : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');  -- stage 0
  -- the zero test as a vector compare: numeric_std's unsigned(x0) /= 0 every clock was a
  -- visible cost in GHDL (a metavalue in x0 still warns, in the input's conversion)
  constant X_ZERO : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');

  -- ceil(n / 2**l): the values left at level l of a tree of pairwise adders over n
  function halved(n : positive; l : natural) return positive is
    variable r : positive := n;
  begin
    for i in 1 to l loop
      r := (r + 1) / 2;
    end loop;
    return r;
  end function;

  -- lanes per neuron at tree level l (level 0: the P products)
  function lanes(l : natural) return positive is
  begin
    return halved(P, l);
  end function;
begin
  assert W_BITS >= 2 and A_BITS >= 1 and W_BITS <= 30 and A_BITS <= 30
    report "mac_array: W_BITS must be 2..30 and A_BITS 1..30" severity failure;
  assert ACC_BITS >= W_BITS + 1
    report "mac_array: ACC_BITS must be >= W_BITS + 1" severity failure;
  assert 2**FOLD_BITS >= FOLDS
    report "mac_array: FOLD_BITS too small for FOLDS" severity failure;

  -- The control pipeline as signals, for the numeric_std body; the integer body keeps the
  -- same registers as variables of its process (GHDL: no signal updates per clock).
  g_ctrl : if not USE_INT generate
  p_ctrl : process (clk)
  begin
    if rising_edge(clk) then
      -- the zero test reads the stage-0 register, not x_data: x_data may come straight
      -- from a block RAM (the input stage's replay buffer)
      -- field by field: an aggregate with a literal fold of 0 (one fold: a 0-bit field)
      -- became "0'b" in GHDL 2.0's Verilog, which yosys rejects
      xa_r.valid <= x_valid = '1';
      xa_r.first <= x_first = '1';
      xa_r.last  <= x_last = '1';
      if x_valid = '1' then  -- x_fold is only defined with x_valid
        xa_r.fold <= to_integer(unsigned(x_fold));
      end if;
      xa_d_r    <= x_data;
      ctrl_r(0) <= xa_r;
      ctrl_r(1)    <= ctrl_r(0);
      ctrl_r(1).nz <= x0_r /= X_ZERO;
      for s in 2 to PS + LEVELS loop
        ctrl_r(s) <= ctrl_r(s - 1);
      end loop;
      if xa_r.valid then
        x0_r <= xa_d_r;
      end if;
      if rst = '1' then
        xa_r   <= IDLE;
        ctrl_r <= (others => IDLE);
      end if;
    end if;
  end process p_ctrl;
  end generate g_ctrl;

  g_int : if USE_INT generate
    subtype x_t is natural range 0 to 2**A_BITS - 1;
    subtype w_t is integer range -(2**(W_BITS - 1)) to 2**(W_BITS - 1) - 1;
    subtype p_t is integer range -(2**(PB - 1)) to 2**(PB - 1) - 1;
    subtype t_t is integer range -(2**(TB - 1)) to 2**(TB - 1) - 1;
    subtype a_t is integer range -(2**(ACC_BITS - 1)) to 2**(ACC_BITS - 1) - 1;
    -- one input register per multiplier, not per lane: a lane's input feeds PE
    -- multipliers spread over the chip, and a shared register put long routing in
    -- front of every DSP block (mlp256, PE = 64: 4.3 ns of a 12.4 ns critical path).
    -- The copies are equal; the synthesis flow marks them keep so they are not merged.
    type x_arr is array (0 to PE * P - 1) of x_t;
    type w_arr is array (0 to PE * P - 1) of w_t;
    type p_arr is array (0 to PE * P - 1) of p_t;
    type t_arr is array (0 to PE * P - 1) of t_t;   -- neuron e's lanes at e*P ..
    type tree_t is array (0 to LEVELS) of t_arr;     -- level l: ceil(P/2**l) lanes (0 unused)
    type a_arr is array (0 to PE - 1) of a_t;
    type b_arr is array (0 to FOLDS * PE - 1) of a_t;

    function to_bias(v : std_logic_vector) return b_arr is
      variable r : b_arr;
    begin
      for n in r'range loop
        r(n) := to_integer(signed(v((n + 1) * ACC_BITS - 1 downto n * ACC_BITS)));
      end loop;
      return r;
    end function;

    -- a weight field as an integer: to_integer(signed(v)) with numeric_std's checks and
    -- temporaries was the largest cost of a GHDL simulation (17 % of its samples, 256
    -- calls per non-zero beat of mlp256); the same value from a loop over the bits.
    -- A metavalue is reported as a warning, which fails a bench run like numeric_std's.
    function to_w(v : std_logic_vector) return w_t is
      variable r : integer := 0;
    begin
      for i in v'range loop  -- v'left is the sign bit
        r := r * 2;
        if v(i) = '1' then
          r := r + 1;
        elsif v(i) /= '0' then
          report "mac_array: metavalue in a weight" severity warning;
          return 0;
        end if;
      end loop;
      if v(v'left) = '1' then
        r := r - 2**W_BITS;
      end if;
      return r;
    end function;

    -- LUT_MULT: level l of a product's tree holds ceil(A_BITS/2**l) partial sums
    function pwidth(l : natural) return positive is
    begin
      return halved(A_BITS, l);
    end function;
    -- gated, shifted weight: bit b of x selects w * 2**b (adders only, no multiplier)
    function term(w : w_t; x : x_t; b : natural) return p_t is
    begin
      if b < A_BITS and to_unsigned(x, A_BITS)(b) = '1' then
        return w * 2**b;
      end if;
      return 0;
    end function;
    type pp_arr is array (0 to PE * P * A_BITS - 1) of p_t;  -- product i's sums at i*A_BITS
    type ptree_t is array (1 to maximum(PL - 1, 1)) of pp_arr;

    signal bias_i : b_arr;
    -- DSP = "ecp5": the stage-1 operands into the blocks, their products out, and the
    -- enables of the blocks' input (stage 2) and output (stage 3) registers
    signal dsp_w  : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
    signal dsp_x  : std_logic_vector(PE * P * A_BITS - 1 downto 0) := (others => '0');
    signal dsp_p  : std_logic_vector(PE * P * PB - 1 downto 0);
    signal dsp_ce_in, dsp_ce_out : std_logic := '0';
  begin
    bias_i <= to_bias(bias);

    g_ecp5 : if ECP5 generate
      g_mult : for i in 0 to PE * P - 1 generate
        u_mult : entity work.ecp5_mult
          generic map (A_BITS => W_BITS, B_BITS => A_BITS, P_BITS => PB)
          port map (
            clk => clk, rst => rst, ce_in => dsp_ce_in, ce_out => dsp_ce_out,
            a => dsp_w((i + 1) * W_BITS - 1 downto i * W_BITS),
            b => dsp_x((i + 1) * A_BITS - 1 downto i * A_BITS),
            p => dsp_p((i + 1) * PB - 1 downto i * PB));
      end generate g_mult;
    end generate g_ecp5;

    -- Why variables: the pipeline registers are variables read before they are written
    -- (stages in reverse order), which synthesizes to the same flip-flops as signals
    -- but spares GHDL PE*P signal updates per stage and clock: about 2x faster here.
    p_mac : process (clk)
      constant S    : positive := PS + LEVELS;  -- the stage that feeds the accumulators
      variable xr   : x_arr := (others => 0);              -- stage 1
      variable xq   : x_t;
      -- the control pipeline (the signals of the same names serve the numeric_std body)
      variable xa   : ctrl_t := IDLE;                                       -- stage -1
      variable xa_d : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
      variable x0   : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
      variable ctrl : ctrl_arr := (others => IDLE);
      variable xr2  : x_arr := (others => 0);              -- stage 2
      variable wr2  : w_arr := (others => 0);              -- stage 2
      variable pr   : p_arr := (others => 0);              -- stage 3
      variable wr   : w_arr := (others => 0);              -- stage 1
      variable pt   : ptree_t := (others => (others => 0)); -- stages 2 .. PS-1 (LUT_MULT)
      variable u    : p_t;
      variable add0 : boolean := true;  -- the addends (stage S) are all 0
      variable w0   : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
      variable wa   : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
      variable prod : p_arr := (others => 0);              -- stage PS
      variable tree : tree_t := (others => (others => 0)); -- stages PS+1 .. PS+LEVELS
      variable acc  : a_arr := (others => 0);
      variable t    : t_t;
      variable a    : a_t;
      variable rd   : std_logic_vector(PE * ACC_BITS - 1 downto 0);
    begin
      if rising_edge(clk) then
        res_valid <= '0';
        -- accumulators, from last clock's lane sums
        if ctrl(S).valid and (ctrl(S).nz or ctrl(S).first or ctrl(S).last) then
          for e in 0 to PE - 1 loop
            if ctrl(S).first then
              a := bias_i(ctrl(S).fold * PE + e);
            else
              a := acc(e);
            end if;
            -- the addend is 0 for an all-zero beat (cleared below): no multiplexer after
            -- the adder, which was on the critical path
            if LEVELS = 0 then
              a := a + prod(e * P);
            else
              a := a + tree(LEVELS)(e * P);
            end if;
            acc(e) := a;
          end loop;
          if ctrl(S).last then
            for e in 0 to PE - 1 loop
              rd((e + 1) * ACC_BITS - 1 downto e * ACC_BITS) :=
                std_logic_vector(to_signed(acc(e), ACC_BITS));
            end loop;
            res_data  <= rd;
            res_valid <= '1';
            res_fold  <= std_logic_vector(to_unsigned(ctrl(S).fold, FOLD_BITS));
          end if;
        end if;
        -- adder tree, top level first: level l adds lane pairs of level l-1 (last clock's)
        for l in LEVELS downto 1 loop
          if ctrl(PS + l - 1).valid and ctrl(PS + l - 1).nz then
            for e in 0 to PE - 1 loop
              for k in 0 to lanes(l) - 1 loop
                if l = 1 then
                  t := prod(e * P + 2 * k);
                  if 2 * k + 1 < lanes(l - 1) then
                    t := t + prod(e * P + 2 * k + 1);
                  end if;
                else
                  t := tree(l - 1)(e * P + 2 * k);
                  if 2 * k + 1 < lanes(l - 1) then
                    t := t + tree(l - 1)(e * P + 2 * k + 1);
                  end if;
                end if;
                tree(l)(e * P + k) := t;
              end loop;
            end loop;
          end if;
        end loop;
        -- products, from last clock's operands (LUT_MULT: from last clock's halves)
        if LUTM then
          -- product tree, top level first; level l (stage 1+l) from level l-1 (stage l)
          for l in PL downto 1 loop
            if ctrl(l).valid and ctrl(l).nz then
              for i in 0 to PE * P - 1 loop
                for k in 0 to pwidth(l) - 1 loop
                  if l = 1 then
                    u := term(wr(i), xr(i), 2 * k) + term(wr(i), xr(i), 2 * k + 1);
                  elsif 2 * k + 1 < pwidth(l - 1) then
                    u := pt(l - 1)(i * A_BITS + 2 * k) + pt(l - 1)(i * A_BITS + 2 * k + 1);
                  else
                    u := pt(l - 1)(i * A_BITS + 2 * k);
                  end if;
                  if l = PL then
                    prod(i) := u;
                  else
                    pt(l)(i * A_BITS + k) := u;
                  end if;
                end loop;
              end loop;
            end if;
          end loop;
        elsif ECP5 then
          -- stage 4: the blocks' registered products (stages 2 and 3 are in the blocks)
          if ctrl(3).valid and ctrl(3).nz then
            for i in 0 to PE * P - 1 loop
              prod(i) := to_integer(signed(dsp_p((i + 1) * PB - 1 downto i * PB)));
            end loop;
          end if;
        else
          -- stage 4: the products registered again
          if ctrl(3).valid and ctrl(3).nz then
            prod := pr;
          end if;
          -- stage 3: the multiplier blocks, a register on each side
          if ctrl(2).valid and ctrl(2).nz then
            for i in 0 to PE * P - 1 loop
              pr(i) := wr2(i) * xr2(i);
            end loop;
          end if;
          -- stage 2: the operands registered again
          if ctrl(1).valid and ctrl(1).nz then
            xr2 := xr;
            wr2 := wr;
          end if;
        end if;
        -- operands; a lane whose input is zero keeps its old weights (its product is 0)
        if ctrl(0).valid and x0 /= X_ZERO then
          for q in 0 to P - 1 loop
            xq := to_integer(unsigned(x0((q + 1) * A_BITS - 1 downto q * A_BITS)));
            for e in 0 to PE - 1 loop
              xr(e * P + q) := xq;
              if xq /= 0 then
                wr(e * P + q) := to_w(
                  w0((e * P + q + 1) * W_BITS - 1 downto (e * P + q) * W_BITS));
              end if;
            end loop;
          end loop;
          if ECP5 then  -- the same stage-1 registers, as the blocks' inputs
            for i in 0 to PE * P - 1 loop
              dsp_w((i + 1) * W_BITS - 1 downto i * W_BITS) <=
                std_logic_vector(to_signed(wr(i), W_BITS));
              dsp_x((i + 1) * A_BITS - 1 downto i * A_BITS) <=
                std_logic_vector(to_unsigned(xr(i), A_BITS));
            end loop;
          end if;
        end if;
        -- stages 0 and -1: the ROM word registered twice as it arrives, without enables
        -- (block RAM outputs, whose clock-to-output leaves no time for logic or a long
        -- route in the same clock; x_* and w_data are aligned clock by clock)
        w0 := wa;
        wa := w_data;
        -- an all-zero beat entering stage S gets addends of 0 (a synchronous clear of that
        -- register; in simulation only once per run of zero beats)
        if ctrl(S - 1).valid then
          if ctrl(S - 1).nz then
            add0 := false;
          elsif not add0 then
            for e in 0 to PE - 1 loop
              if LEVELS = 0 then
                prod(e * P) := 0;
              else
                tree(LEVELS)(e * P) := 0;
              end if;
            end loop;
            add0 := true;
          end if;
        end if;
        -- the control pipeline, after every read of it in this clock (stages in reverse
        -- order: the same flip-flops as the signals of the numeric_std body)
        for st in PS + LEVELS downto 2 loop
          ctrl(st) := ctrl(st - 1);
        end loop;
        ctrl(1)    := ctrl(0);
        ctrl(1).nz := x0 /= X_ZERO;  -- the zero test reads the stage-0 register
        ctrl(0)    := xa;
        if xa.valid then
          x0 := xa_d;
        end if;
        xa.valid := x_valid = '1';
        xa.first := x_first = '1';
        xa.last  := x_last = '1';
        -- x_fold is only defined with x_valid, and constant through a fold: converted at
        -- the fold's first beat only (the record holds it for the others)
        if x_valid = '1' and x_first = '1' then
          xa.fold := to_integer(unsigned(x_fold));
        end if;
        xa_d := x_data;
        if rst = '1' then
          xa   := IDLE;
          ctrl := (others => IDLE);
          res_valid <= '0';
          -- Operands to 0 and "the addend may be non-zero": the first zero beat then
          -- clears the addends. Initial values of process variables do not survive GHDL's
          -- synthesis, so without this the netlist (and the device after power-up) would
          -- start from unknown operands that a zero input multiplies into its product.
          xr   := (others => 0);
          wr   := (others => 0);
          xr2  := (others => 0);
          wr2  := (others => 0);
          add0 := false;
          if ECP5 then
            dsp_w <= (others => '0');
            dsp_x <= (others => '0');
          end if;
        end if;
        if ECP5 then  -- the blocks' enables for the next edge: stages 1 and 2 as updated
          dsp_ce_in  <= '1' when ctrl(1).valid and ctrl(1).nz else '0';
          dsp_ce_out <= '1' when ctrl(2).valid and ctrl(2).nz else '0';
        end if;
      end if;
    end process p_mac;
  end generate g_int;

  g_wide : if not USE_INT generate
    type x_arr is array (0 to PE * P - 1) of signed(A_BITS downto 0);  -- per multiplier
    type w_arr is array (0 to PE * P - 1) of signed(W_BITS - 1 downto 0);
    type p_arr is array (0 to PE * P - 1) of signed(PB - 1 downto 0);
    type t_arr is array (0 to PE * P - 1) of signed(TB - 1 downto 0);
    type tree_t is array (0 to LEVELS) of t_arr;  -- level 0 unused (the products)
    type a_arr is array (0 to PE - 1) of signed(ACC_BITS - 1 downto 0);
    constant MAXW : positive := maximum(TB, ACC_BITS);

    -- the lane sum modulo 2**ACC_BITS: exact, as the accumulated result fits ACC_BITS
    function fit(v : signed) return signed is
      variable r : signed(MAXW - 1 downto 0);
    begin
      r := resize(v, MAXW);  -- sign extension only (never narrower)
      return r(ACC_BITS - 1 downto 0);
    end function;

    signal xr   : x_arr := (others => (others => '0'));  -- stage 1
    signal wr   : w_arr := (others => (others => '0'));
    signal xr2  : x_arr := (others => (others => '0'));  -- stage 2
    signal wr2  : w_arr := (others => (others => '0'));
    signal pr   : p_arr := (others => (others => '0'));  -- stage 3
    signal prod : p_arr := (others => (others => '0'));  -- stage 4
    signal tree : tree_t := (others => (others => (others => '0')));
    signal acc  : a_arr := (others => (others => '0'));
  begin
    p_mac : process (clk)
      constant S  : positive := PS + LEVELS;
      variable t  : signed(TB - 1 downto 0);
      variable a  : signed(ACC_BITS - 1 downto 0);
      variable rd : std_logic_vector(PE * ACC_BITS - 1 downto 0);
      variable bi : natural;
      variable bs : std_logic_vector(ACC_BITS - 1 downto 0);
      variable w0 : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
      variable wa : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
    begin
      if rising_edge(clk) then
        res_valid <= '0';
        if ctrl_r(0).valid and x0_r /= X_ZERO then
          for i in 0 to PE * P - 1 loop
            xr(i) <= signed('0' & x0_r((i mod P + 1) * A_BITS - 1 downto (i mod P) * A_BITS));
          end loop;
          for i in 0 to PE * P - 1 loop
            wr(i) <= signed(w0((i + 1) * W_BITS - 1 downto i * W_BITS));
          end loop;
        end if;
        w0 := wa;  -- stages 0 and -1, as in the integer body
        wa := w_data;
        if ctrl_r(1).valid and ctrl_r(1).nz then  -- stage 2, as in the integer body
          xr2 <= xr;
          wr2 <= wr;
        end if;
        if ctrl_r(2).valid and ctrl_r(2).nz then
          for i in 0 to PE * P - 1 loop
            -- W_BITS x (A_BITS+1) bits: the full product, PB bits, never truncated
            pr(i) <= wr2(i) * xr2(i);
          end loop;
        end if;
        if ctrl_r(3).valid and ctrl_r(3).nz then
          prod <= pr;
        end if;
        for l in 1 to LEVELS loop
          if ctrl_r(PS + l - 1).valid and ctrl_r(PS + l - 1).nz then
            for e in 0 to PE - 1 loop
              for k in 0 to lanes(l) - 1 loop
                if l = 1 then
                  t := resize(prod(e * P + 2 * k), TB);
                  if 2 * k + 1 < lanes(l - 1) then
                    t := t + resize(prod(e * P + 2 * k + 1), TB);
                  end if;
                else
                  t := tree(l - 1)(e * P + 2 * k);
                  if 2 * k + 1 < lanes(l - 1) then
                    t := t + tree(l - 1)(e * P + 2 * k + 1);
                  end if;
                end if;
                tree(l)(e * P + k) <= t;
              end loop;
            end loop;
          end if;
        end loop;
        if ctrl_r(S).valid and (ctrl_r(S).nz or ctrl_r(S).first or ctrl_r(S).last) then
          for e in 0 to PE - 1 loop
            if ctrl_r(S).first then
              bi := ctrl_r(S).fold * PE + e;
              -- slice, then convert: GHDL 4.1 --synth crashes on signed() of a variable slice
              bs := bias((bi + 1) * ACC_BITS - 1 downto bi * ACC_BITS);
              a  := signed(bs);
            else
              a := acc(e);
            end if;
            if ctrl_r(S).nz then
              if LEVELS = 0 then
                a := a + fit(prod(e * P));
              else
                a := a + fit(tree(LEVELS)(e * P));
              end if;
            end if;
            acc(e) <= a;
            rd((e + 1) * ACC_BITS - 1 downto e * ACC_BITS) := std_logic_vector(a);
          end loop;
          if ctrl_r(S).last then
            res_data  <= rd;
            res_valid <= '1';
            res_fold  <= std_logic_vector(to_unsigned(ctrl_r(S).fold, FOLD_BITS));
          end if;
        end if;
        if rst = '1' then
          res_valid <= '0';
        end if;
      end if;
    end process p_mac;
  end generate g_wide;
end architecture rtl;
