-- mac_array: PE neurons x P inputs of multiply-accumulate, pipelined, exact widths.
--
-- Per beat (x_* aligned with its ROM word w_data; weight of neuron e, lane q at field
-- e*P+q, W_BITS wide; input lane q at field q, A_BITS wide, unsigned; x_fold is read at
-- a fold's first beat, x_first, and must stay the same through its beats):
--   acc(e) := (x_first ? bias(x_fold*PE + e) : acc(e)) + sum over q of w(e,q) * x(q)
-- and the beat with x_last completes a fold: its PE accumulators go to res_data (neuron
-- e at bits [(e+1)*ACC_BITS-1 : e*ACC_BITS]) with a one-clock res_valid, and res_data
-- holds until the next fold completes. x_valid reaches res_valid after
-- mlp_common.mac_latency(MULT_STYLE, P, A_BITS) clocks (7 + ceil(log2 P) for
-- "inferred" and "ecp5").
--
-- This unit only wires its parts, one job each:
--   mac_ctrl  the control pipeline: the beat's stages, the zero skip, the enables
--   mac_mult  the ROM word and the operands, PE x P products (MULT_STYLE)
--   mac_tree  the adder tree over the P lanes of each neuron (P > 1)
--   mac_acc   the PE accumulators, from the fold's biases, and the result register
-- The arithmetic units compute in VHDL integers when every value fits 31 bits
-- (mlp_common.mac_int; several times faster in GHDL, the same widths after synthesis)
-- and in numeric_std signed beyond (e.g. int16); that choice stays inside them.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;
use work.mlp_common.all;

entity mac_array is
  generic (
    PE         : positive := 256;  -- neurons computed in parallel
    P          : positive := 1;    -- inputs per beat
    W_BITS     : positive := 8;    -- signed weight width
    A_BITS     : positive := 8;    -- unsigned input width
    ACC_BITS   : positive := 24;   -- signed accumulator width
    FOLDS      : positive := 1;    -- folds per image; bias holds FOLDS*PE neurons' biases
    FOLD_BITS  : positive := 1;
    -- "inferred", "ecp5" or "lut": see mac_mult and mlp_common.mult_error
    MULT_STYLE : string   := "inferred"
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
    res_valid : out std_logic;
    res_fold  : out std_logic_vector(FOLD_BITS - 1 downto 0);
    res_data  : out std_logic_vector(PE * ACC_BITS - 1 downto 0)
  );
end entity mac_array;

architecture rtl of mac_array is
  constant PB       : positive := W_BITS + A_BITS + 1;  -- product width
  constant LEVELS   : natural  := clog2(P);             -- adder tree levels
  constant TB       : positive := PB + LEVELS;          -- lane-sum width
  constant INT_MATH : boolean  := mac_int(W_BITS, A_BITS, ACC_BITS, P);
  constant MS       : positive := mult_stages(MULT_STYLE, A_BITS);  -- stage of the products
  constant S        : positive := MS + LEVELS;          -- stage of the addends

  signal x0        : std_logic_vector(P * A_BITS - 1 downto 0);
  signal en        : std_logic_vector(0 to S - 1);
  signal clr       : std_logic;
  signal acc_en    : std_logic;
  signal acc_first : std_logic;
  signal acc_last  : std_logic;
  signal acc_fold  : std_logic_vector(FOLD_BITS - 1 downto 0);
  signal prod_i    : int_arr(0 to PE * P - 1);
  signal prod_v    : std_logic_vector(PE * P * PB - 1 downto 0);
  signal sum_i     : int_arr(0 to PE - 1);               -- the addends, lane sums
  signal sum_v     : std_logic_vector(PE * TB - 1 downto 0);
begin
  assert W_BITS >= 2 and A_BITS >= 1 and W_BITS <= 30 and A_BITS <= 30
    report "mac_array: W_BITS must be 2..30 and A_BITS 1..30" severity failure;
  assert ACC_BITS >= W_BITS + 1
    report "mac_array: ACC_BITS must be >= W_BITS + 1" severity failure;
  assert 2**FOLD_BITS >= FOLDS
    report "mac_array: FOLD_BITS too small for FOLDS" severity failure;

  u_ctrl : entity work.mac_ctrl
    generic map (P => P, A_BITS => A_BITS, FOLD_BITS => FOLD_BITS, STAGES => S)
    port map (
      clk => clk, rst => rst, x_valid => x_valid, x_first => x_first, x_last => x_last,
      x_fold => x_fold, x_data => x_data, x0 => x0, en => en, clr => clr,
      acc_en => acc_en, acc_first => acc_first, acc_last => acc_last, acc_fold => acc_fold);

  -- one lane: the products are the addends (no tree, mac_ctrl's clr goes to them)
  g_one_lane : if LEVELS = 0 generate
    u_mult : entity work.mac_mult
      generic map (PE => PE, P => P, W_BITS => W_BITS, A_BITS => A_BITS,
                   MULT_STYLE => MULT_STYLE, INT_MATH => INT_MATH)
      port map (
        clk => clk, rst => rst, w_data => w_data, x0 => x0, en => en(0 to MS - 1),
        clr => clr, prod_i => sum_i, prod_v => sum_v);
  end generate g_one_lane;

  g_lanes : if LEVELS > 0 generate
    u_mult : entity work.mac_mult
      generic map (PE => PE, P => P, W_BITS => W_BITS, A_BITS => A_BITS,
                   MULT_STYLE => MULT_STYLE, INT_MATH => INT_MATH)
      port map (
        clk => clk, rst => rst, w_data => w_data, x0 => x0, en => en(0 to MS - 1),
        clr => '0', prod_i => prod_i, prod_v => prod_v);

    u_tree : entity work.mac_tree
      generic map (PE => PE, P => P, IN_BITS => PB, INT_MATH => INT_MATH)
      port map (
        clk => clk, en => en(MS to S - 1), clr => clr, prod_i => prod_i, prod_v => prod_v,
        sum_i => sum_i, sum_v => sum_v);
  end generate g_lanes;

  u_acc : entity work.mac_acc
    generic map (PE => PE, ACC_BITS => ACC_BITS, IN_BITS => TB, FOLDS => FOLDS,
                 FOLD_BITS => FOLD_BITS, INT_MATH => INT_MATH)
    port map (
      clk => clk, rst => rst, en => acc_en, first => acc_first, last => acc_last,
      fold => acc_fold, add_i => sum_i, add_v => sum_v, bias => bias,
      res_valid => res_valid, res_fold => res_fold, res_data => res_data);
end architecture rtl;
