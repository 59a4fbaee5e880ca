-- tb_plain: the same top and images as the cocotb bench, driven by plain VHDL that reads
-- the pixels from a text file (one per line, decimal, each image padded to whole beats),
-- P per beat. It writes each class to classes.txt. bench/bench_parallel.py compares its
-- wall time with cocotb's (the harness cost); it copies this file with the generated
-- top's entity name in place of dut_top and the generics filled in.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;
use std.textio.all;

entity tb_plain is
  generic (
    P          : positive := 1;
    CLASS_BITS : positive := 4;
    N_IMAGES   : positive := 1
  );
end entity tb_plain;

architecture sim of tb_plain is
  signal clk       : std_logic := '0';
  signal rst       : std_logic := '1';
  signal s_valid   : std_logic := '0';
  signal s_ready   : std_logic;
  signal s_data    : std_logic_vector(P * 8 - 1 downto 0) := (others => '0');
  signal done      : std_logic;
  signal class_out : std_logic_vector(CLASS_BITS - 1 downto 0);
  signal finished  : boolean := false;
begin
  clk <= not clk after 5 ns when not finished;

  u_dut : entity work.dut_top
    port map (clk => clk, rst => rst, s_valid => s_valid, s_ready => s_ready,
              s_data => s_data, done => done, class_out => class_out);

  p_drive : process
    file f     : text open read_mode is "pixels.txt";
    variable l : line;
    variable v : integer;
    variable b : std_logic_vector(P * 8 - 1 downto 0);
  begin
    for i in 1 to 3 loop
      wait until rising_edge(clk);
    end loop;
    rst <= '0';
    wait until rising_edge(clk);
    while not endfile(f) loop
      for q in 0 to P - 1 loop
        readline(f, l);
        read(l, v);
        b((q + 1) * 8 - 1 downto q * 8) := std_logic_vector(to_unsigned(v, 8));
      end loop;
      s_data  <= b;
      s_valid <= '1';
      loop
        wait until rising_edge(clk);
        exit when s_ready = '1';
      end loop;
    end loop;
    s_valid <= '0';
    wait;
  end process p_drive;

  p_collect : process
    file f     : text open write_mode is "classes.txt";
    variable l : line;
  begin
    for i in 1 to N_IMAGES loop
      wait until rising_edge(clk) and done = '1';
      write(l, to_integer(unsigned(class_out)));
      writeline(f, l);
    end loop;
    finished <= true;
    wait;
  end process p_collect;
end architecture sim;
