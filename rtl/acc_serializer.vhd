-- acc_serializer: result stage of mlp_layer. Collects the accumulators of an image fold
-- by fold, hands them over to a holding register and streams them out, Q per clock.
--
-- Fold f's PE accumulators arrive on res_* (one-clock res_valid; res_data holds until
-- the next fold completes, GUARD clocks at least) and belong to neurons f*PE .. f*PE+PE-1.
-- Folds before the last are kept in a collection register. When the last fold arrives
-- and the holding register is free, the hand-over is decided at that edge and done at
-- the next: acc_flat (all N_OUT accumulators) is valid with a one-clock acc_valid, and
-- out_* streams neuron i*Q+q in lane q of beat i (lanes past N_OUT are 0, out_last on
-- the last beat). If the holding register is still streaming the previous image, the
-- hand-over waits (pending): the last fold's values stay in the MAC array's res_data,
-- and fin_block tells the input stage not to complete another fold until the hand-over
-- has been decided.
--
-- Timing (mlp256 at PE = 64 on an ECP5-85 had its critical paths here): every wide
-- enable comes straight from a flip-flop. The collection and holding registers load
-- from registered strobes, one copy per fold and per group of GW bits (a few hundred
-- enables each, not thousands on one net). The output is a two-entry FIFO whose free
-- space is a register, so out_ready (which comes combinationally from the next units)
-- only moves the FIFO (a push into the full FIFO fails the simulation). The multiplexer
-- from the holding register has two registered stages: a group register holds MUX_GROUP
-- beats (loaded with group 0 at the hand-over and with the next group as the last beat
-- of a group goes out), and the FIFO takes one beat of that group; its selects are
-- registered decodes of the beat counter.
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
  constant BW        : positive := Q * ACC_BITS;      -- bits of one beat
  -- the holding register covers every fold and every beat of every group (extra lanes
  -- stay 0), in CHUNKS chunks of GW bits, one load strobe each
  constant CHUNKS    : positive := (maximum(FOLDS * FOLD_W, GROUPS * GW) + GW - 1) / GW;
  constant HELD_BITS : positive := CHUNKS * GW;
  constant COL_N     : positive := maximum(FOLDS - 1, 1);
  constant COL_BITS  : positive := COL_N * FOLD_W;

  signal col      : std_logic_vector(COL_BITS - 1 downto 0) := (others => '0');
  signal held     : std_logic_vector(HELD_BITS - 1 downto 0) := (others => '0');
  -- registered load strobes, replicated (one per fold of col, one per chunk of held): each
  -- drives its own few hundred enables straight from a flip-flop (synthesis keeps the
  -- copies, gen/eda/synth.py)
  signal col_ld   : std_logic_vector(COL_N - 1 downto 0) := (others => '0');
  signal held_ld  : std_logic_vector(CHUNKS - 1 downto 0) := (others => '0');
  signal col_go   : boolean := false;  -- a col_ld strobe is '1'
  signal pending  : boolean := false;  -- all folds done, holding register still busy
  signal loading  : boolean := false;  -- hand-over decided: held loads at the next edge
  signal emitting : boolean := false;  -- holding register has beats not yet in the output
  -- (up to OUT_BEATS, never reached, so that emit_idx + 1 elaborates when OUT_BEATS = 1)
  signal emit_idx : natural range 0 to OUT_BEATS := 0;
  -- registered decodes of emit_idx: the emit decision reads flip-flops only
  signal lo       : natural range 0 to G - 1 := 0;          -- beat within its group
  signal cur_g    : natural range 0 to GROUPS - 1 := 0;     -- lo's group
  signal gnext    : natural range 0 to GROUPS - 1 := 0;     -- the one after (clipped)
  signal at_glast : boolean := false;  -- lo = G - 1 and another group follows
  signal at_end   : boolean := false;  -- emit_idx = OUT_BEATS - 1
  signal grp      : std_logic_vector(GW - 1 downto 0) := (others => '0');  -- group register
  signal nh_all   : std_logic_vector(HELD_BITS - 1 downto 0);  -- what a hand-over loads
  -- the output: a two-entry FIFO whose free space is a register (space), so that
  -- out_ready only moves the FIFO and never reaches the group register's enables
  signal f0, f1   : std_logic_vector(BW - 1 downto 0) := (others => '0');
  signal f0_last, f1_last : std_logic := '0';
  signal cnt      : natural range 0 to 2 := 0;
  signal f_valid  : boolean := false;  -- cnt /= 0
  signal space    : boolean := true;   -- cnt <= 1
begin
  assert FOLDS * PE >= N_OUT and (FOLDS - 1) * PE < N_OUT
    report "acc_serializer: FOLDS must be ceil(N_OUT/PE)" severity failure;
  assert 2**FOLD_BITS >= FOLDS
    report "acc_serializer: FOLD_BITS too small for FOLDS" severity failure;
  assert is_pow2(MUX_GROUP)
    report "acc_serializer: MUX_GROUP must be a power of 2" severity failure;

  fin_block <= '1' when pending else '0';
  out_valid <= '1' when f_valid else '0';
  out_data  <= f0;
  out_last  <= f0_last;
  acc_flat  <= held(N_OUT * ACC_BITS - 1 downto 0);

  -- the new held value: changes only when a fold arrives (cheap to simulate)
  g_nh_col : if FOLDS > 1 generate
    nh_all((FOLDS - 1) * FOLD_W - 1 downto 0) <= col((FOLDS - 1) * FOLD_W - 1 downto 0);
  end generate g_nh_col;
  nh_all(FOLDS * FOLD_W - 1 downto (FOLDS - 1) * FOLD_W) <= res_data;
  g_nh_pad : if HELD_BITS > FOLDS * FOLD_W generate
    nh_all(HELD_BITS - 1 downto FOLDS * FOLD_W) <= (others => '0');
  end generate g_nh_pad;

  p_main : process (clk)
    variable adv  : boolean;  -- a beat goes into the output FIFO at this edge
    variable pop  : boolean;  -- the FIFO's head leaves at this edge
    variable n    : natural range 0 to 3;
    variable nlo  : natural range 0 to G - 1;
    variable ng   : natural range 0 to GROUPS - 1;
    variable busy : boolean;  -- holding register in use after this clock
    variable want : boolean;  -- a complete image waits for the holding register
    variable f    : natural;
  begin
    if rising_edge(clk) then
      if acc_valid = '1' then  -- a one-clock strobe
        acc_valid <= '0';
      end if;

      -- output FIFO: a beat of the group register goes in when there is space
      adv := emitting and space;
      pop := f_valid and out_ready = '1';
      n   := cnt;
      if pop then
        f0      <= f1;
        f0_last <= f1_last;
        n       := n - 1;
      end if;
      if adv then
        -- pragma translate_off
        assert rst = '1' or n < 2
          report "acc_serializer: a beat pushed into the full output FIFO (it would be lost)"
          severity failure;
        -- pragma translate_on
        if n = 0 then
          f0      <= grp((lo + 1) * BW - 1 downto lo * BW);
          f0_last <= '1' when at_end else '0';
        else
          f1      <= grp((lo + 1) * BW - 1 downto lo * BW);
          f1_last <= '1' when at_end else '0';
        end if;
        n := n + 1;
      end if;
      if adv or pop then  -- (only then: fewer signal updates to simulate)
        cnt     <= n;
        f_valid <= n /= 0;
        space   <= n <= 1;
      end if;

      -- emission: the beat counter and its registered decodes
      busy := emitting or loading;
      if adv then
        if at_end then
          busy     := loading;
          emitting <= false;
        else
          -- the next beat: lo wraps at a group's end, where another group follows
          -- (emit_idx is not the last beat)
          if lo = G - 1 then
            nlo := 0;
            ng  := gnext;
          else
            nlo := lo + 1;
            ng  := cur_g;
          end if;
          emit_idx <= emit_idx + 1;
          at_end   <= emit_idx + 1 = OUT_BEATS - 1;
          lo       <= nlo;
          cur_g    <= ng;
          gnext    <= minimum(ng + 1, GROUPS - 1);
          at_glast <= nlo = G - 1 and ng < GROUPS - 1;
        end if;
        -- the group's last beat goes out: the next beat comes from the next group
        if at_glast then
          grp <= held((gnext + 1) * GW - 1 downto gnext * GW);
        end if;
      end if;

      -- fold results: registered per-fold strobes load col in the clock after res_valid
      -- (res_data holds for GUARD clocks)
      f := 0;  -- res_fold is only defined with res_valid (no metavalue conversions)
      if res_valid = '1' then
        f := to_integer(unsigned(res_fold));
      end if;
      for fi in 0 to COL_N - 1 loop
        -- static slices (one enable per fold): a dynamic slice became a latch in yosys
        if col_ld(fi) = '1' then
          col((fi + 1) * FOLD_W - 1 downto fi * FOLD_W) <= res_data;
        end if;
      end loop;
      if res_valid = '1' or col_go then  -- (only then: fewer signal updates to simulate)
        for fi in 0 to COL_N - 1 loop
          col_ld(fi) <= '1' when res_valid = '1' and f = fi and fi < FOLDS - 1 else '0';
        end loop;
        col_go <= res_valid = '1' and f < FOLDS - 1;
      end if;

      -- hand-over, decided at one edge (loading, held_ld) and done at the next
      for k in 0 to CHUNKS - 1 loop
        if held_ld(k) = '1' then
          held((k + 1) * GW - 1 downto k * GW) <= nh_all((k + 1) * GW - 1 downto k * GW);
        end if;
      end loop;
      if loading then
        grp       <= nh_all(GW - 1 downto 0);
        acc_valid <= '1';
        emitting  <= true;
        emit_idx  <= 0;
        at_end    <= OUT_BEATS = 1;
        lo        <= 0;
        cur_g     <= 0;
        gnext     <= minimum(1, GROUPS - 1);
        at_glast  <= G = 1 and GROUPS > 1;
      end if;
      want := pending or (res_valid = '1' and f = FOLDS - 1);
      if want and not busy then
        loading <= true;
        held_ld <= (others => '1');
      elsif loading then  -- (cleared only when set: fewer signal updates to simulate)
        loading <= false;
        held_ld <= (others => '0');
      end if;
      if pending /= (want and busy) then
        pending <= want and busy;
      end if;

      if rst = '1' then
        pending   <= false;
        loading   <= false;
        emitting  <= false;
        held_ld   <= (others => '0');
        col_ld    <= (others => '0');
        col_go    <= false;
        cnt       <= 0;
        f_valid   <= false;
        space     <= true;
        acc_valid <= '0';
      end if;
    end if;
  end process p_main;
end architecture rtl;
