-- acc_serializer: result stage of mlp_layer. Collects the accumulators of an image fold
-- by fold, hands them over to a holding register and streams them out, Q per clock.
--
-- Fold f's PE accumulators arrive on res_* (one-clock res_valid; res_data holds until
-- the next fold completes) and belong to neurons f*PE .. f*PE+PE-1. Folds before the
-- last are kept in a collection register. When the last fold arrives and the holding
-- register is free, everything is copied into it in that clock: acc_flat (all N_OUT
-- accumulators) is valid with a one-clock acc_valid, and out_* streams neuron i*Q+q in
-- lane q of beat i (lanes past N_OUT are 0, out_last on the last beat). If the holding
-- register is still streaming the previous image, the hand-over waits (pending): the
-- last fold's values stay in the MAC array's res_data, and fin_block tells the input
-- stage not to complete another fold until the hand-over has happened.
--
-- out_* is a register: the wide multiplexer then ends at a flip-flop instead of running
-- on into the consumer (argmax's comparator was the critical path of l10 without it).
-- The multiplexer itself has two registered stages: a group register holds MUX_GROUP
-- beats of the holding register (loaded with group 0 at the hand-over and with the next
-- group as the last beat of a group goes out), and out_* selects one beat of that group.
-- One N_OUT-to-1 multiplexer was the critical path of mlp256 at PE = 64 (11.1 ns, eight
-- levels of LUTs and muxes); two smaller stages keep the same latency.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity acc_serializer is
  generic (
    N_OUT     : positive := 256;  -- neurons
    PE        : positive := 256;  -- neurons per fold
    FOLDS     : positive := 1;    -- ceil(N_OUT/PE)
    FOLD_BITS : positive := 1;
    ACC_BITS  : positive := 24;
    Q         : positive := 1;    -- accumulators per output beat
    MUX_GROUP : positive := 16    -- beats per group of the output multiplexer, a power of 2
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    res_valid : in  std_logic;
    res_fold  : in  std_logic_vector(FOLD_BITS - 1 downto 0);
    res_data  : in  std_logic_vector(PE * ACC_BITS - 1 downto 0);
    fin_block : out std_logic;
    acc_flat  : out std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    acc_valid : out std_logic := '0';  -- a register: starts at 0
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(Q * ACC_BITS - 1 downto 0);
    out_last  : out std_logic
  );
end entity acc_serializer;

architecture rtl of acc_serializer is
  function is_pow2(n : positive) return boolean is
    variable v : positive := n;
  begin
    while v mod 2 = 0 loop
      v := v / 2;
    end loop;
    return v = 1;
  end function;

  constant OUT_BEATS : positive := (N_OUT + Q - 1) / Q;
  constant FOLD_W    : positive := PE * ACC_BITS;  -- bits of one fold
  constant G         : positive := minimum(MUX_GROUP, OUT_BEATS);  -- beats per group
  constant GROUPS    : positive := (OUT_BEATS + G - 1) / G;
  constant GW        : positive := G * Q * ACC_BITS;  -- bits of one group
  -- the holding register covers every fold and every beat of every group (extra lanes
  -- stay 0)
  constant HELD_BITS : positive := maximum(FOLDS * PE * ACC_BITS, GROUPS * GW);
  constant COL_BITS  : positive := maximum(FOLDS - 1, 1) * FOLD_W;

  signal col      : std_logic_vector(COL_BITS - 1 downto 0) := (others => '0');
  signal held     : std_logic_vector(HELD_BITS - 1 downto 0) := (others => '0');
  signal pending  : boolean := false;  -- all folds done, holding register still busy
  signal emitting : boolean := false;  -- holding register has beats not yet in the output
  signal emit_idx : natural range 0 to OUT_BEATS - 1 := 0;
  signal grp      : std_logic_vector(GW - 1 downto 0) := (others => '0');  -- group register
  signal ob_valid : boolean := false;  -- output register
  signal ob_data  : std_logic_vector(Q * ACC_BITS - 1 downto 0) := (others => '0');
  signal ob_last  : std_logic := '0';
begin
  assert FOLDS * PE >= N_OUT and (FOLDS - 1) * PE < N_OUT
    report "acc_serializer: FOLDS must be ceil(N_OUT/PE)" severity failure;
  assert 2**FOLD_BITS >= FOLDS
    report "acc_serializer: FOLD_BITS too small for FOLDS" severity failure;
  assert is_pow2(MUX_GROUP)
    report "acc_serializer: MUX_GROUP must be a power of 2" severity failure;

  fin_block <= '1' when pending else '0';
  out_valid <= '1' when ob_valid else '0';
  out_data  <= ob_data;
  out_last  <= ob_last;
  acc_flat  <= held(N_OUT * ACC_BITS - 1 downto 0);

  p_main : process (clk)
    variable busy : boolean;  -- holding register in use after this clock
    variable want : boolean;  -- a complete image waits for the holding register
    variable f    : natural;
    variable lo   : natural range 0 to G - 1;  -- beat of emit_idx within its group
    variable gn   : natural;                   -- the group after emit_idx's
    variable nh   : std_logic_vector(HELD_BITS - 1 downto 0);  -- the new held value
  begin
    if rising_edge(clk) then
      acc_valid <= '0';
      busy := emitting;
      if out_ready = '1' then
        ob_valid <= false;
      end if;
      if emitting and (not ob_valid or out_ready = '1') then
        if GROUPS = 1 then  -- one group (G = OUT_BEATS, any value): no divider
          lo := emit_idx;
          gn := 1;
        else                -- G = MUX_GROUP, a power of 2: the low bits and the high bits
          lo := emit_idx mod MUX_GROUP;
          gn := emit_idx / MUX_GROUP + 1;
        end if;
        ob_valid <= true;
        ob_data  <= grp((lo + 1) * Q * ACC_BITS - 1 downto lo * Q * ACC_BITS);
        ob_last  <= '1' when emit_idx = OUT_BEATS - 1 else '0';
        if emit_idx = OUT_BEATS - 1 then
          busy := false;
        else
          emit_idx <= emit_idx + 1;
        end if;
        -- the group's last beat goes out: the next beat comes from the next group
        if lo = G - 1 and gn < GROUPS then
          grp <= held((gn + 1) * GW - 1 downto gn * GW);
        end if;
      end if;

      f := 0;  -- res_fold is only defined with res_valid (no metavalue conversions)
      if res_valid = '1' then
        f := to_integer(unsigned(res_fold));
      end if;
      want := pending or (res_valid = '1' and f = FOLDS - 1);
      -- static slices (one enable per fold): a dynamic slice became a latch in yosys
      for g in 0 to FOLDS - 2 loop
        if res_valid = '1' and f = g then
          col((g + 1) * FOLD_W - 1 downto g * FOLD_W) <= res_data;
        end if;
      end loop;
      if want and not busy then
        nh := (others => '0');
        if FOLDS > 1 then
          nh((FOLDS - 1) * FOLD_W - 1 downto 0) := col((FOLDS - 1) * FOLD_W - 1 downto 0);
        end if;
        nh(FOLDS * FOLD_W - 1 downto (FOLDS - 1) * FOLD_W) := res_data;
        held      <= nh;
        grp       <= nh(GW - 1 downto 0);
        acc_valid <= '1';
        emit_idx  <= 0;
        busy      := true;
        want      := false;
      end if;
      emitting <= busy;
      pending  <= want;

      if rst = '1' then
        pending   <= false;
        emitting  <= false;
        emit_idx  <= 0;
        ob_valid  <= false;
        acc_valid <= '0';
      end if;
    end if;
  end process p_main;
end architecture rtl;
