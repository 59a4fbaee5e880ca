-- mlp_layer: one fully connected layer, PE neurons in parallel, P inputs per clock.
--
--   in_* --> [layer_input] --rom_addr--> weight ROM (outside, registered read)
--                 | beat, aligned with the ROM word        |
--                 v                                        v
--            [mac_array: PE x P products, adder tree, PE accumulators]
--                 | PE accumulators per fold
--                 v
--            [acc_serializer: collect folds, holding register] --> acc_flat, out_* (Q/clock)
--
-- The layer has FOLDS = ceil(N_OUT/PE) folds of BEATS = ceil(N_IN/P) beats. ROM layout:
-- the word at address f*BEATS + j holds w(f*PE+e, j*P+q) of lane e*P+q, at bits
-- [(e*P+q+1)*W_BITS-1 : (e*P+q)*W_BITS], zero past N_OUT and N_IN. All neurons of a fold
-- share the address. With PE = N_OUT (the default) there is one fold and the layout is
-- the original one (neuron n, lane q at field n*P+q). Arithmetic: docs/numerics.md,
-- section 3; the units: docs/architecture.md.
--
-- After the last beat of an image the accumulators go to a holding register (acc_flat,
-- one-clock acc_valid) and the next image's beats are taken while it streams out.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;
use work.mlp_common.all;

entity mlp_layer is
  generic (
    N_IN      : positive := 784;  -- inputs per image
    N_OUT     : positive := 256;  -- neurons
    W_BITS    : positive := 8;    -- signed weight width
    A_BITS    : positive := 8;    -- unsigned input activation width
    ACC_BITS  : positive := 24;   -- signed accumulator width (from gen/core/quant.py)
    ACC_BITS_MIN : natural := 0;  -- what this layer's weights and biases need (generator)
    P         : positive := 1;    -- inputs per clock (lanes of in_data and of the ROM word)
    -- neurons in parallel; any value >= N_OUT (the default) means all N_OUT at once
    PE        : positive := positive'high;
    Q         : positive := 1;    -- accumulators per clock on out_data
    ADDR_BITS : positive := 10;   -- ROM address width, 2**ADDR_BITS >= FOLDS*ceil(N_IN/P)
    -- "inferred", "ecp5" (ECP5 multiplier blocks) or "lut" (products from adders):
    -- see mac_mult; the generator picks it (gen/hdl/mlp_common.py, mult_style_for)
    MULT_STYLE : string  := "inferred"
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    -- input activations, unsigned, P per beat, input j*P+p in lane p
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(P * A_BITS - 1 downto 0);
    -- weight ROM, registered read; min(PE, N_OUT) neurons x P lanes per word
    rom_addr  : out std_logic_vector(ADDR_BITS - 1 downto 0);
    -- read enable: '0' for beats that are not issued or whose inputs are all zero
    -- (mac_array never reads their word), so the ROM word may then stay as it was
    rom_en    : out std_logic;
    rom_data  : in  std_logic_vector(minimum(PE, N_OUT) * P * W_BITS - 1 downto 0);
    -- biases, neuron n at bits [(n+1)*ACC_BITS-1 : n*ACC_BITS] (a constant in practice)
    bias      : in  std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    -- every accumulator, valid in the clock where acc_valid is '1'
    acc_flat  : out std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    acc_valid : out std_logic;
    -- accumulators, Q per beat, neuron i*Q+q in lane q (lanes past N_OUT are 0)
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(Q * ACC_BITS - 1 downto 0);
    out_last  : out std_logic
  );
end entity mlp_layer;

architecture rtl of mlp_layer is
  constant PE_N      : positive := minimum(PE, N_OUT);
  constant FOLDS     : positive := (N_OUT + PE_N - 1) / PE_N;
  constant FOLD_BITS : positive := maximum(clog2(FOLDS), 1);
  constant BEATS     : positive := (N_IN + P - 1) / P;
  -- GUARD (layer_input): the clocks from an issued beat to its result in fin_block, at
  -- least: the ROM read after its registered address, mac_array's latency, and
  -- acc_serializer's registered strobes up to fin_block. A larger GUARD only costs
  -- clocks when BEATS <= GUARD.
  constant ROM_CLOCKS : positive := 1;
  constant FIN_CLOCKS : positive := 2;
  constant MAC_LAT    : positive := mac_latency(MULT_STYLE, P, A_BITS);
  constant GUARD      : natural  := ROM_CLOCKS + MAC_LAT + FIN_CLOCKS;

  signal x_valid, x_first, x_last : std_logic;
  signal x_fold    : std_logic_vector(FOLD_BITS - 1 downto 0);
  signal x_data    : std_logic_vector(P * A_BITS - 1 downto 0);
  signal res_valid : std_logic;
  signal res_fold  : std_logic_vector(FOLD_BITS - 1 downto 0);
  signal res_data  : std_logic_vector(PE_N * ACC_BITS - 1 downto 0);
  signal fin_block : std_logic;
  -- biases of FOLDS*PE_N neurons: zero past N_OUT, like their weights
  signal bias_ext  : std_logic_vector(FOLDS * PE_N * ACC_BITS - 1 downto 0);
begin
  assert ACC_BITS >= ACC_BITS_MIN
    report "mlp_layer: ACC_BITS=" & integer'image(ACC_BITS) & " is too narrow: the weights " &
           "need " & integer'image(ACC_BITS_MIN) & " bits (docs/numerics.md, section 3)"
    severity failure;
  assert 2**ADDR_BITS >= FOLDS * BEATS
    report "mlp_layer: ADDR_BITS too small for FOLDS*ceil(N_IN/P)" severity failure;
  assert ACC_BITS >= W_BITS + 1 and A_BITS <= 30
    report "mlp_layer: ACC_BITS must hold one product; A_BITS must be <= 30"
    severity failure;
  -- a fold's result must reach fin_block before layer_input completes another fold
  assert GUARD >= ROM_CLOCKS + mac_latency(MULT_STYLE, P, A_BITS) + FIN_CLOCKS
    report "mlp_layer: GUARD=" & integer'image(GUARD) & " is shorter than a beat's way " &
           "to fin_block" severity failure;

  bias_ext <= std_logic_vector(resize(unsigned(bias), bias_ext'length));

  u_input : entity work.layer_input
    generic map (
      N_IN => N_IN, P => P, A_BITS => A_BITS, FOLDS => FOLDS, FOLD_BITS => FOLD_BITS,
      ADDR_BITS => ADDR_BITS, GUARD => GUARD)
    port map (
      clk => clk, rst => rst, in_valid => in_valid, in_ready => in_ready, in_data => in_data,
      fin_block => fin_block, rom_addr => rom_addr, rom_en => rom_en, x_valid => x_valid,
      x_first => x_first, x_last => x_last, x_fold => x_fold, x_data => x_data);

  u_mac : entity work.mac_array
    generic map (
      PE => PE_N, P => P, W_BITS => W_BITS, A_BITS => A_BITS, ACC_BITS => ACC_BITS,
      FOLDS => FOLDS, FOLD_BITS => FOLD_BITS, MULT_STYLE => MULT_STYLE)
    port map (
      clk => clk, rst => rst, x_valid => x_valid, x_first => x_first, x_last => x_last,
      x_fold => x_fold, x_data => x_data, w_data => rom_data, bias => bias_ext,
      res_valid => res_valid, res_fold => res_fold, res_data => res_data);

  u_out : entity work.acc_serializer
    generic map (
      N_OUT => N_OUT, PE => PE_N, FOLDS => FOLDS, FOLD_BITS => FOLD_BITS,
      ACC_BITS => ACC_BITS, Q => Q)
    port map (
      clk => clk, rst => rst, res_valid => res_valid, res_fold => res_fold,
      res_data => res_data, fin_block => fin_block, acc_flat => acc_flat,
      acc_valid => acc_valid, out_valid => out_valid, out_ready => out_ready,
      out_data => out_data, out_last => out_last);
end architecture rtl;
